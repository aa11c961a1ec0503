"""A classifier over one exported artifact: pixels in, probabilities out."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgeclf.core.errors import EdgeclfError
from edgeclf.core.images import load_image, normalize
from edgeclf.runtime.artifact import ArtifactInfo
from edgeclf.runtime.backends import open_backend, resolve_engine
from edgeclf.runtime.machine import int8_saturation_risk
from edgeclf.runtime.timing import span

log = logging.getLogger(__name__)


class Classifier:
    """One exported artifact on its engine: uint8 pixels in, probabilities out.

    Takes the artifact's description (ArtifactInfo: input/output quantization, normalisation,
    labels) and its file; `kernels` is "fast" (the engine's default) or "reference" (LiteRT's
    portable kernels); `engine` overrides the engine artifacts.json names for an ONNX file (None or
    "auto": as recorded). Raises EdgeclfError when the engine is missing or refuses the options.
    """

    def __init__(
        self,
        info: ArtifactInfo,
        file: Path,
        threads: int | None = None,
        device: str = "cpu",
        kernels: str = "fast",
        engine: str | None = None,
    ):
        self.info = info
        self.threads = threads
        self.kernels = kernels
        self.engine_name = resolve_engine(file, info.engine, engine)
        self.backend = open_backend(file, threads, device, kernels, self.engine_name, info.precision)
        if self.engine_name == "onnxruntime" and info.precision.is_integer and int8_saturation_risk(info.produced_by):
            log.warning(
                f"{Path(file).name}: 8-bit int8 weights on an x86 CPU without VNNI: ONNX Runtime's u8s8 kernels can "
                "saturate here; `edgeclf verify` shows whether this board keeps the exported answers"
            )

    @classmethod
    def from_run(
        cls, run_dir: Path, info: ArtifactInfo, threads: int | None = None, device: str = "cpu", engine=None
    ) -> Classifier:
        return cls(info, Path(run_dir) / info.path, threads, device, engine=engine)

    @property
    def engine(self) -> str:
        return self.backend.engine

    @property
    def version(self) -> str:
        return self.backend.version

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def check_pixels(self, pixels: np.ndarray) -> None:
        """The input contract of every method taking pixels: a NumPy uint8 array [N, H, W, 3] (what
        edgeclf.core.images.load_image gives, stacked) with the artifact's H and W and N >= 1. Floats,
        bools and other integer types are refused rather than guessed at (is 1.0 white or nearly
        black?); uint8 cannot hold NaN or infinity. Raises ValueError (TypeError for a non-array)."""
        height, width = self.info.image_size
        if not isinstance(pixels, np.ndarray):
            raise TypeError(f"{self.info.name}: pixels must be a NumPy array, not {type(pixels).__name__}")
        if pixels.dtype != np.uint8:
            raise ValueError(
                f"{self.info.name}: pixels must be uint8 (0..255, as edgeclf.core.images.load_image gives them), "
                f"not {pixels.dtype}"
            )
        if pixels.ndim != 4 or pixels.shape[1:] != (height, width, 3) or pixels.shape[0] < 1:
            raise ValueError(
                f"{self.info.name}: pixels must have shape [N, {height}, {width}, 3] (N >= 1), not {list(pixels.shape)}"
            )

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels [N,H,W,3] (the shared preprocessing's output) -> this artifact's input tensor.
        Raises ValueError for other input (check_pixels)."""
        self.check_pixels(pixels)
        spec = self.info.input
        values = pixels.astype(np.float32)
        if spec.expects == "normalized":
            values = normalize(values, self.info.normalization)
        if spec.quantized:
            return spec.quantize(values)
        return values.astype(spec.dtype)

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """Model output -> probabilities. A quantized softmax (uint8 with scale 1/256 in a TFLite,
        or behind a DequantizeLinear in an ONNX QDQ graph) sums to 1 only within a few steps; outputs
        are dequantized and renormalised so that every runner reports probabilities that sum to 1
        (the ranking is unchanged; float outputs move by about 1e-7)."""
        spec = self.info.output
        probs = spec.dequantize(raw) if spec.quantized else raw.astype(np.float32)
        total = probs.sum(axis=1, keepdims=True)
        return np.divide(probs, total, out=probs.copy(), where=total > 0)

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Probabilities [N, classes] for uint8 pixel batches."""
        self.check_pixels(pixels)
        outputs = [
            self.finish(self.backend.run(self.prepare(pixels[i : i + batch_size])))
            for i in range(0, len(pixels), batch_size)
        ]
        return np.concatenate(outputs)

    def timed(self, pixels: np.ndarray) -> tuple[np.ndarray, dict]:
        """Probabilities for a uint8 batch, and the spans {preprocess_ms, invoke_ms, postprocess_ms}
        (edgeclf.runtime.timing) it took."""
        spans: dict = {}
        with span(spans, "preprocess_ms"):
            x = self.prepare(pixels)
        with span(spans, "invoke_ms"):
            raw = self.backend.run(x)
        with span(spans, "postprocess_ms"):
            probs = self.finish(raw)
        return probs, spans

    def warm_up(self) -> None:
        """One untimed inference, so that the first image's timing is not the engine's first call;
        it also checks that the model gives one output per label. Raises EdgeclfError."""
        width = self.predict_pixels(np.zeros((1, *self.info.image_size, 3), np.uint8)).shape[-1]
        if width != len(self.labels):
            raise EdgeclfError(
                f"{self.info.name}: the model gives {width} outputs but its description lists {len(self.labels)} labels"
            )

    def predict_files(self, paths: list[Path], batch_size: int = 32) -> np.ndarray:
        pixels = np.stack([load_image(p, self.info.image_size) for p in paths])
        return self.predict_pixels(pixels, batch_size)
