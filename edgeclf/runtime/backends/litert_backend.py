"""LiteRT (ai_edge_litert, falling back to tflite_runtime) for .tflite files. Kernels: "fast" is
XNNPACK (LiteRT's default); "reference" LiteRT's portable reference kernels: slow, but
bit-identical on every CPU, for checking that a device reproduces a workstation's answers exactly
(integer kernels round their requantization in ISA-specific ways, so an int8 model's outputs differ
by a few quantization steps between an x86 and an Arm CPU, and between LiteRT's own kernel sets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeclf.core.errors import EngineMissingError, ModelFileError
from edgeclf.runtime.backends.engines import engine_version, import_engine


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
