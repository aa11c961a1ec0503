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
