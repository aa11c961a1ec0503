"""Inference engines behind one small interface: run(batch) -> raw output array.

LiteRT (ai_edge_litert, falling back to tflite_runtime) for .tflite; ONNX Runtime for .onnx.

Kernels: "fast" is each engine's default (LiteRT: XNNPACK). Integer kernels round their
requantization in ISA-specific ways, so an int8 model's outputs differ by a few quantization steps
between an x86 and an Arm CPU (and between LiteRT's own kernel sets on one CPU). "reference" runs
LiteRT's portable reference kernels: slow, but bit-identical on every CPU, for checking that a
device reproduces a workstation's answers exactly. ONNX Runtime has no such kernel set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeclf.errors import EdgeclfError

KERNELS = ("fast", "reference")


def import_engine(suffix: str):
    """Import the engine package for a .tflite or .onnx file (what bench times as import_ms), or
    raise a one-line error naming what to install."""
    if suffix == ".tflite":
        try:
            from ai_edge_litert import interpreter
        except ImportError:  # devices where only tflite-runtime has a wheel (32-bit Arm)
            try:
                from tflite_runtime import interpreter
            except ImportError:
                raise EdgeclfError(
                    "no TFLite interpreter installed; pip install ai-edge-litert "
                    "(tflite-runtime on 32-bit Arm), or use an .onnx artifact"
                ) from None
        return interpreter
    if suffix == ".onnx":
        try:
            import onnxruntime
        except ImportError:
            raise EdgeclfError(
                "onnxruntime is not installed; pip install onnxruntime, or use a .tflite artifact"
            ) from None
        return onnxruntime
    raise ValueError(f"expected a .tflite or .onnx file, not {suffix!r}")


def engine_version(suffix: str) -> str:
    """The installed version of the engine package for a .tflite or .onnx file."""
    from importlib.metadata import PackageNotFoundError, version

    names = ("ai-edge-litert", "tflite-runtime") if suffix == ".tflite" else ("onnxruntime", "onnxruntime-gpu")
    for name in names:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            continue
    return "unknown"


class LiteRTBackend:
    """A .tflite file on LiteRT: run(batch) -> raw output (the input tensor is resized to the batch
    when it changes). kernels "fast" uses XNNPACK, "reference" LiteRT's portable kernels. Raises
    EdgeclfError when no TFLite interpreter is installed or the file does not load."""

    def __init__(self, path: Path, threads: int | None = None, kernels: str = "fast"):
        try:
            lite = import_engine(".tflite")
        except EdgeclfError as exc:
            raise EdgeclfError(f"{path.name}: {exc}") from None
        Interpreter, OpResolverType = lite.Interpreter, lite.OpResolverType  # noqa: N806
        resolver = OpResolverType.BUILTIN_REF if kernels == "reference" else OpResolverType.AUTO
        self.engine = "LiteRT (reference kernels)" if kernels == "reference" else "LiteRT (XNNPACK)"
        self.version = engine_version(".tflite")
        self.interpreter = Interpreter(
            model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
        )
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch = int(self.input["shape"][0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(batch.shape))
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
            ort = import_engine(".onnx")
        except EdgeclfError as exc:
            raise EdgeclfError(f"{path.name}: {exc}") from None
        self.version = f"onnxruntime {ort.__version__}"
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.engine = f"onnxruntime ({self.session.get_providers()[0]})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


def onnx_providers(device: str) -> list[str]:
    """cpu: the CPU provider; gpu: TensorRT and CUDA where onnxruntime has them, CPU as fallback."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available] + [
        "CPUExecutionProvider"
    ]


def open_backend(path: Path, threads: int | None = None, device: str = "cpu", kernels: str = "fast"):
    """LiteRT runs on the CPU (its GPU delegate has no desktop Python build); ONNX Runtime uses
    the providers for `device`."""
    path = Path(path)
    if kernels not in KERNELS:
        raise EdgeclfError(f"--kernels {kernels}: choose one of {', '.join(KERNELS)}")
    if path.suffix == ".tflite":
        return LiteRTBackend(path, threads, kernels)
    if path.suffix == ".onnx":
        if kernels != "fast":
            raise EdgeclfError(
                f"--kernels {kernels}: {path.name} is an ONNX file and ONNX Runtime has no reference "
                "kernels; use a .tflite artifact or --kernels fast"
            )
        return OnnxBackend(path, threads, onnx_providers(device))
    raise ValueError(f"{path}: expected a .tflite or .onnx file")
