"""A console that belongs to edgeclf: what TensorFlow, absl, LiteRT and the converters print for
themselves is kept out of the default output, and shown with `edgeclf --verbose`.

The command owns its process, so this is where process-wide settings are made (the library makes
none): the native libraries' log levels, set before TensorFlow is imported; Python warnings from
other packages (Keras' "legacy HDF5", the converter's "statistics for quantized inputs", tfmot's
distutils) routed to the `py.warnings` logger, shown only when verbose; and the native stderr (file
descriptor 2: TensorFlow's C++ start-up lines, "Created TensorFlow Lite XNNPACK delegate",
"fully_quantize: 0, inference_type: 6 ...") sent to a file, while Python's sys.stderr, where every
edgeclf line and any traceback goes, keeps writing to the terminal through a copy of the original
descriptor. The file is removed at a normal exit; a crash names it (`native messages: PATH`).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import tempfile
from pathlib import Path

# what the native libraries read when they load: errors only (the user's own setting wins)
NATIVE_LEVELS = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "2"}
_native_log: list[Path] = []


def keep_console_quiet(verbose: bool) -> None:
    """Before any command runs (and before TensorFlow is imported): everything above, or, verbose,
    the other packages' messages and warnings on the console as they come."""
    logging.captureWarnings(True)
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.propagate = False
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  %(name)s: %(message)s"))
        warnings_log.addHandler(handler)
        return
    warnings_log.addHandler(logging.NullHandler())
    for name, level in NATIVE_LEVELS.items():
        os.environ.setdefault(name, level)
    for name in ("absl", "tensorflow", "h5py", "nncf"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _native_stderr_to_file()


def native_log() -> Path | None:
    """Where the native libraries' messages of this process went (None: to the console)."""
    return _native_log[0] if _native_log else None


def keep_native_log() -> None:
    """A command crashed: keep the native libraries' messages and say where they are."""
    path = native_log()
    if path is not None:
        atexit.unregister(path.unlink)
        print(f"native messages: {path}", file=sys.stderr)


def _native_stderr_to_file() -> None:
    try:
        terminal = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to keep quiet
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    handle, name = tempfile.mkstemp(prefix="edgeclf-native-", suffix=".log")
    os.dup2(handle, 2)
    os.close(handle)
    path = Path(name)
    _native_log.append(path)
    atexit.register(path.unlink, missing_ok=True)  # the same bound method keep_native_log unregisters
