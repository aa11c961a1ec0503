"""Typed export errors (all are EdgeclfError: one line, non-zero exit)."""

from edgeclf.core.errors import EdgeclfError


class ExportError(EdgeclfError):
    """A conversion failed or its result is not a valid model file."""


class ValidationFailed(ExportError):
    """An artifact disagrees with the model it came from beyond the allowed limits."""


class NotIntegerError(ValidationFailed):
    """An "int8" artifact came out float or dynamic-range (float tensors left, or float I/O)."""


class ToleranceExceeded(ValidationFailed):
    """A float artifact's probabilities differ from its source model's by more than the tolerance."""


class AccuracyDropTooLarge(ValidationFailed):
    """A quantized artifact's validation accuracy falls more than --max-drop below the float model's."""


class OutputMismatch(ValidationFailed):
    """The artifact's output does not have one probability per class for every image."""
