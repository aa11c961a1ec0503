"""A classifier over one exported artifact: pixels in, probabilities out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeclf.images import load_image
from edgeclf.runtime.artifact import ArtifactInfo
from edgeclf.runtime.backends import open_backend


class Classifier:
    def __init__(self, info: ArtifactInfo, file: Path, threads: int | None = None, device: str = "cpu",
                 kernels: str = "fast"):
        self.info = info
        self.backend = open_backend(file, threads, device, kernels)

    @classmethod
    def from_run(cls, run_dir: Path, info: ArtifactInfo, threads: int | None = None, device: str = "cpu") -> Classifier:
        return cls(info, Path(run_dir) / info.path, threads, device)

    @property
    def engine(self) -> str:
        return self.backend.engine

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels [N,H,W,3] (the shared preprocessing's output) -> this artifact's input tensor."""
        spec = self.info.input
        values = pixels.astype(np.float32)
        if spec.expects == "normalized":
            values = values * np.float32(self.info.normalization["scale"]) + np.float32(self.info.normalization["offset"])
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
        outputs = [self.finish(self.backend.run(self.prepare(pixels[i:i + batch_size])))
                   for i in range(0, len(pixels), batch_size)]
        return np.concatenate(outputs)

    def predict_files(self, paths: list[Path], batch_size: int = 32) -> np.ndarray:
        pixels = np.stack([load_image(p, self.info.image_size) for p in paths])
        return self.predict_pixels(pixels, batch_size)
