"""Errors a user can fix. The CLI prints them as one line and exits non-zero, without a traceback."""


class EdgeclfError(Exception):
    """Base class: the message names the file or option at fault and what to do."""


class ConfigError(EdgeclfError):
    """A configuration file or command-line option is unknown or out of range."""


class DataError(EdgeclfError):
    """The data folder is missing, empty or cannot be split."""


class WeightsError(EdgeclfError):
    """Requested backbone weights cannot be loaded."""


class RunDirError(EdgeclfError):
    """The run directory cannot be used (it already holds a run, or is not a run)."""


# The device side's errors, one class per kind a program embedding edgeclf.runtime can act on. Each
# is an EdgeclfError (the CLI prints it as one line); the message says what happened and what to do.


class IntegrityError(EdgeclfError):
    """A file differs from what its index records (size or sha256): changed since export."""


class EngineMissingError(EdgeclfError):
    """The engine an artifact needs (LiteRT, ONNX Runtime, OpenVINO) is not installed here."""


class EngineUnsupportedError(EdgeclfError):
    """The engine is installed but cannot run this artifact here (bf16 without native bf16, a precision
    it compiled differently, a bf16 artifact asked of ONNX Runtime)."""


class ModelFileError(EdgeclfError):
    """A model file is unusable: too large, not the format its name says, damaged, or refused by
    the runtime that loads it."""


class MalformedIndexError(EdgeclfError):
    """An index or description (artifacts.json, an embedded description, parity's reference.json)
    is not valid, or an entry or field in it is not."""


class BundleError(EdgeclfError):
    """A bundle is unsafe or not an edgeclf bundle; nothing was written."""
