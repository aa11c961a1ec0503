"""Inference engines behind one small interface: run(batch) -> raw output array.

LiteRT (ai_edge_litert, falling back to tflite_runtime) for .tflite; ONNX Runtime or OpenVINO for
.onnx. Which engine runs an artifact is written in artifacts.json (`engine`; empty means the
format's default: LiteRT for .tflite, ONNX Runtime for .onnx); `--engine` overrides it for ONNX
files.

Kernels: "fast" is each engine's default (LiteRT: XNNPACK). Integer kernels round their
requantization in ISA-specific ways, so an int8 model's outputs differ by a few quantization steps
between an x86 and an Arm CPU (and between LiteRT's own kernel sets on one CPU). "reference" runs
LiteRT's portable reference kernels: slow, but bit-identical on every CPU, for checking that a
device reproduces a workstation's answers exactly. ONNX Runtime and OpenVINO have no such kernel set.

OpenVINO precision: on a CPU with native bf16, OpenVINO runs an fp32 model in bf16 unless told
otherwise. Here an fp32 (or int8) artifact always runs with INFERENCE_PRECISION_HINT f32, and a
bf16 artifact with bf16, refused where the CPU has no native bf16; the precision the compiled
model reports is in `engine`, so that no bf16 run is ever reported as fp32.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from edgeclf.core.errors import ConfigError, EngineMissingError, EngineUnsupportedError, ModelFileError
from edgeclf.runtime.integrity import check_model_file

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
MAX_COMPILED_SHAPES = 4  # OpenVINO: compiled models kept per batch size


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


class LiteRTBackend:
    """A .tflite file on LiteRT: run(batch) -> raw output (the input tensor is resized to the batch
    when it changes). kernels "fast" uses XNNPACK, "reference" LiteRT's portable kernels. Raises
    EdgeclfError when no TFLite interpreter is installed or the file does not load."""

    def __init__(self, path: Path, threads: int | None = None, kernels: str = "fast"):
        try:
            lite = import_engine("litert")
        except EngineMissingError as exc:
            raise EngineMissingError(f"{path.name}: {exc}") from None
        Interpreter, OpResolverType = lite.Interpreter, lite.OpResolverType  # noqa: N806
        resolver = OpResolverType.BUILTIN_REF if kernels == "reference" else OpResolverType.AUTO
        self.engine = "LiteRT (reference kernels)" if kernels == "reference" else "LiteRT (XNNPACK)"
        self.version = engine_version("litert")
        try:
            self.interpreter = Interpreter(
                model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
            )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            why = " ".join(str(exc).split())[:160]
            raise ModelFileError(f"{path}: LiteRT could not load it ({why})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch = int(self.input["shape"][0])
        self._item = [int(v) for v in self.input["shape"][1:]]  # H, W, C: never resized

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:  # only the batch dimension: H and W are the model's
            if list(batch.shape[1:]) != self._item:
                takes = ", ".join(map(str, self._item))
                raise ValueError(f"input shape {list(batch.shape)}, the model takes [N, {takes}]")
            self.interpreter.resize_tensor_input(self.input["index"], [batch.shape[0], *self._item])
            self.interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()


class OnnxBackend:
    """An .onnx file on ONNX Runtime with the given execution providers (CPU by default):
    run(batch) -> raw output. Raises EdgeclfError when onnxruntime is not installed."""

    def __init__(self, path: Path, threads: int | None = None, providers: list[str] | None = None):
        try:
            ort = import_engine("onnxruntime")
        except EngineMissingError as exc:
            raise EngineMissingError(f"{path.name}: {exc}") from None
        self.version = f"onnxruntime {ort.__version__}"
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... classes
            why = " ".join(str(exc).split())[:160]
            raise ModelFileError(f"{path}: ONNX Runtime could not load it ({why})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.engine = f"onnxruntime ({self.session.get_providers()[0]})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def native_bf16(core=None) -> bool:
    """Whether OpenVINO reports native bf16 on this CPU (False when OpenVINO is not installed)."""
    if core is None:
        if not engine_available("openvino"):
            return False
        core = import_engine("openvino").Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoBackend:
    """An .onnx file on OpenVINO's CPU plugin: run(batch) -> raw output. The model is reshaped to a
    static batch and compiled once per batch size (OpenVINO's recommended practice for latency; the
    last MAX_COMPILED_SHAPES are kept), with the latency hint, the thread count, and the precision
    hint of the artifact: f32 for fp32 and int8 files (the float parts of an int8 file in f32),
    bf16 for a bf16 artifact. Raises EdgeclfError when OpenVINO is missing, the file does not load,
    bf16 is asked for on a CPU without it, or the compiled model runs another precision."""

    def __init__(self, path: Path, threads: int | None = None, precision: str = "fp32"):
        try:
            ov = import_engine("openvino")
        except EngineMissingError as exc:
            raise EngineMissingError(f"{path.name}: {exc}") from None
        self.version = f"openvino {ov.__version__.split('-')[0]}"
        self.core = ov.Core()
        self.hint = "bf16" if precision == "bf16" else "f32"
        if self.hint == "bf16" and not native_bf16(self.core):
            raise EngineUnsupportedError(
                f"{path.name}: a bf16 artifact, and OpenVINO reports no native bf16 on this CPU "
                "(OPTIMIZATION_CAPABILITIES); use the fp32 or int8 artifact here"
            )
        try:
            self.model = self.core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line text
            why = " ".join(str(exc).split())[:200]
            raise ModelFileError(f"{path.name}: OpenVINO could not read it: {why}") from None
        self.config = {"INFERENCE_PRECISION_HINT": self.hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self._requests: OrderedDict[tuple, object] = OrderedDict()
        shape = self.model.input(0).get_partial_shape()
        self._shape = [int(d.get_length()) if d.is_static else None for d in shape]
        used = self._request(1).get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
        self.precision_used = used.get_type_name()  # f32 | bf16 | f16
        if self.precision_used != self.hint:
            raise EngineUnsupportedError(
                f"{path.name}: OpenVINO compiled it for {self.precision_used}, not the {self.hint} asked for"
            )
        self.engine = f"OpenVINO (CPU, {self.precision_used})"

    def reserve(self, batch: int) -> None:
        """Compile for this batch size now (bench does, outside its timed runs)."""
        self._request(batch)

    def _request(self, batch: int):
        key = (batch,)
        if key not in self._requests:
            model = self.model.clone()
            model.reshape([batch, *self._shape[1:]])
            self._requests[key] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            while len(self._requests) > MAX_COMPILED_SHAPES:
                self._requests.popitem(last=False)
        self._requests.move_to_end(key)
        return self._requests[key]

    def run(self, batch: np.ndarray) -> np.ndarray:
        request = self._request(int(batch.shape[0]))
        request.infer({0: batch})
        return request.get_output_tensor(0).data.copy()


def onnx_providers(device: str) -> list[str]:
    """cpu: the CPU provider; gpu: TensorRT and CUDA where onnxruntime has them, CPU as fallback."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available] + [
        "CPUExecutionProvider"
    ]


def open_backend(
    path: Path,
    threads: int | None = None,
    device: str = "cpu",
    kernels: str = "fast",
    engine: str | None = None,
    precision: str = "fp32",
):
    """The backend for a file on `engine` (resolve_engine's answer; None: the format's default).
    LiteRT runs on the CPU (its GPU delegate has no desktop Python build); ONNX Runtime uses the
    providers for `device`; OpenVINO runs on the CPU with the precision hint of `precision`."""
    path = Path(path)
    if kernels not in KERNELS:
        raise ConfigError(f"--kernels {kernels}: choose one of {', '.join(KERNELS)}")
    check_model_file(path)  # before any native runtime reads the bytes
    engine = engine or resolve_engine(path)
    if precision == "bf16" and engine != "openvino":
        raise EngineUnsupportedError(
            f"{path.name}: bf16 artifacts run on OpenVINO only (--engine {engine} was asked for)"
        )
    if engine == "litert":
        return LiteRTBackend(path, threads, kernels)
    if kernels != "fast":
        raise ConfigError(
            f"--kernels {kernels}: {path.name} is an ONNX file and {DISPLAY[engine]} has no reference "
            "kernels; use a .tflite artifact or --kernels fast"
        )
    if engine == "openvino":
        if device != "cpu":
            raise ConfigError(f"--device {device}: edgeclf runs OpenVINO on the CPU only; use --engine onnxruntime")
        return OpenVinoBackend(path, threads, precision)
    return OnnxBackend(path, threads, onnx_providers(device))
