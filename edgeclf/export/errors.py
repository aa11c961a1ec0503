"""Typed export errors (all are EdgeclfError: one line, non-zero exit)."""

from edgeclf.errors import EdgeclfError


class ExportError(EdgeclfError):
    """A conversion failed or its result is not what was asked for."""


class NotIntegerError(ExportError):
    """An "int8" artifact came out float or dynamic-range."""


class ValidationFailed(ExportError):
    """An artifact disagrees with the model it came from beyond the allowed limits."""
