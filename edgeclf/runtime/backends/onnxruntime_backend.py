"""ONNX Runtime for .onnx files, with the execution providers for the device (CPU; TensorRT and
CUDA first on a GPU where onnxruntime has them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeclf.core.errors import EngineMissingError, ModelFileError
from edgeclf.runtime.backends.engines import import_engine

# ONNX Runtime's WeightBiasQuantization pass quantizes the float weights of a node that sits between
# a DequantizeLinear and a QuantizeLinear, undoing an int8-mixed file's float layers (a repaired file,
# edgeclf.export.repair, measured: 31 % agreement with the float model with the pass, 100 % without).
# It changes nothing in a file whose weights are all quantized or all float, so it is off for every file.
KEEP_FLOAT = ["WeightBiasQuantization"]


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
            self.session = ort.InferenceSession(
                str(path), options, providers=providers or ["CPUExecutionProvider"], disabled_optimizers=KEEP_FLOAT
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... classes
            why = " ".join(str(exc).split())[:160]
            raise ModelFileError(f"{path}: ONNX Runtime could not load it ({why})") from None
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
