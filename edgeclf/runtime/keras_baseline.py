"""The float Keras model as a classifier: the baseline every artifact is compared with.
Imports TensorFlow (lazily, on construction): not for the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np

KERAS_NAME = "keras-fp32"


class KerasClassifier:
    name = KERAS_NAME

    def __init__(self, model_path: Path, labels: list[str]):
        import tensorflow as tf

        from edgeclf.models import load_model

        self.model = load_model(model_path)
        self.labels = labels
        self.engine = f"TensorFlow {tf.__version__} ({'GPU' if tf.config.get_visible_devices('GPU') else 'CPU'})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.model.predict_on_batch(batch)

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float32)

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        return np.concatenate([self.run(self.prepare(pixels[i:i + batch_size])) for i in range(0, len(pixels), batch_size)])
