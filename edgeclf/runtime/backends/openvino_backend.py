"""OpenVINO's CPU plugin for .onnx files. Precision: on a CPU with native bf16, OpenVINO runs an
fp32 model in bf16 unless told otherwise. Here an fp32 (or int8) artifact always runs with
INFERENCE_PRECISION_HINT f32, and a bf16 artifact with bf16, refused where the CPU has no native
bf16; the precision the compiled model reports is in `engine`, so that no bf16 run is ever reported
as fp32."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from edgeclf.core.errors import EngineMissingError, EngineUnsupportedError, ModelFileError
from edgeclf.runtime.backends.engines import engine_available, import_engine

MAX_COMPILED_SHAPES = 4  # compiled models kept per batch size


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
