"""The engines edgeclf runs and which one runs a file: the engine table (package, display name,
format default), importing an engine with a one-line error naming what to install, whether one is
installed, and resolving --engine against what artifacts.json records. A new engine is a row in
ENGINES/DISPLAY/_PACKAGES here, a module beside this one with its Backend class, and a branch in
open_backend (edgeclf/runtime/backends/__init__.py)."""

from __future__ import annotations

from pathlib import Path

from edgeclf.core.errors import ConfigError, EngineMissingError, ModelFileError

KERNELS = ("fast", "reference")
ENGINES = ("litert", "onnxruntime", "openvino")
ENGINE_CHOICES = ("auto", "onnxruntime", "openvino")  # --engine: for ONNX artifacts
DEFAULT_ENGINE = {".tflite": "litert", ".onnx": "onnxruntime"}
_PACKAGES = {
    "litert": ("ai-edge-litert", "tflite-runtime"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "openvino": ("openvino",),
}
DISPLAY = {"litert": "LiteRT", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def import_engine(engine: str):
    """Import an engine's package (what bench times as import_ms), or raise a one-line error
    naming what to install."""
    if engine == "litert":
        try:
            from ai_edge_litert import interpreter
        except ImportError:  # devices where only tflite-runtime has a wheel (32-bit Arm)
            try:
                from tflite_runtime import interpreter
            except ImportError:
                raise EngineMissingError(
                    "no TFLite interpreter installed; pip install ai-edge-litert "
                    "(tflite-runtime on 32-bit Arm), or use an .onnx artifact"
                ) from None
        return interpreter
    if engine == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            raise EngineMissingError(
                "onnxruntime is not installed; pip install onnxruntime, or use a .tflite artifact"
            ) from None
        return onnxruntime
    if engine == "openvino":
        try:
            import openvino
        except ImportError:
            raise EngineMissingError(
                "OpenVINO is not installed; pip install 'edgeclf[openvino]', or use --engine onnxruntime"
            ) from None
        return openvino
    raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


def engine_available(engine: str) -> bool:
    """Whether the engine's package can be imported here (without importing it)."""
    from importlib.util import find_spec

    modules = {
        "litert": ("ai_edge_litert", "tflite_runtime"),
        "onnxruntime": ("onnxruntime",),
        "openvino": ("openvino",),
    }
    try:
        return any(find_spec(m) is not None for m in modules.get(engine, ()))
    except ValueError:  # a module set to None in sys.modules (how tests hide a package)
        return False


def engine_of(entry, override: str | None = None) -> str:
    """The engine an artifacts.json entry runs on: --engine's for an ONNX file when given, else the
    recorded one, else its format's default ("" for a file that is neither .tflite nor .onnx)."""
    suffix = Path(entry.path).suffix
    if override not in (None, "auto") and suffix == ".onnx":
        return override
    return entry.engine or DEFAULT_ENGINE.get(suffix, "")


def for_engine(entries: list, override: str | None) -> list:
    """The artifacts an explicit --engine applies to: ONNX files that engine can run (bf16 ones run
    on OpenVINO only); every artifact when the engine is auto or not given. Evaluate and bench both
    filter with it (each had its own copy, which kept openvino-bf16 under --engine onnxruntime)."""
    if not override or override == "auto":
        return entries
    return [a for a in entries if a.format == "onnx" and (not a.precision.openvino_only or override == "openvino")]


def runnable(entries: list, override: str | None = None) -> tuple[list, list]:
    """(the artifacts whose engine is installed here, the names of those whose engine is not)."""
    ok, missing = [], []
    for entry in entries:
        (ok if engine_available(engine_of(entry, override)) else missing).append(entry)
    return ok, [entry.name for entry in missing]


def engine_version(engine: str) -> str:
    """The installed version of the engine's package."""
    from importlib.metadata import PackageNotFoundError, version

    for name in _PACKAGES[engine]:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            continue
    return "unknown"


def resolve_engine(path: Path, recorded: str = "", override: str | None = None) -> str:
    """The engine for a file: --engine (auto, onnxruntime, openvino: ONNX files only), else the one
    artifacts.json records, else the format's default. Raises EdgeclfError for a mismatch."""
    suffix = Path(path).suffix
    if suffix not in DEFAULT_ENGINE:
        raise ModelFileError(f"{Path(path).name}: expected a .tflite or .onnx file")
    if override not in (None, "auto"):
        if override not in ENGINE_CHOICES:
            raise ConfigError(f"--engine {override}: choose one of {', '.join(ENGINE_CHOICES)}")
        if suffix != ".onnx":
            raise ConfigError(
                f"--engine {override}: {Path(path).name} is a TFLite file (it runs on LiteRT); "
                "--engine chooses the engine of ONNX artifacts"
            )
        return override
    return recorded or DEFAULT_ENGINE[suffix]
