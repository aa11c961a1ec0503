"""The float Keras model as a classifier: the baseline every artifact is compared with.
Imports TensorFlow (lazily, on construction): not for the device.

It is timed the way the artifacts are: a compiled call (tf.function of model(x, training=False),
traced once per batch shape, the trace counted in load time), NumPy in and NumPy out. Keras'
predict_on_batch builds an input pipeline on every call (several times slower than the compiled
call at batch 1: measured in docs/USAGE.md, "Evaluation, benchmarks, reports and prediction");
bench reports it apart, as a labelled second figure, and never uses it for ratios.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

KERAS_NAME = "keras-fp32"


def import_keras():
    """What bench times as the Keras baseline's import_ms."""
    import tensorflow as tf
    import tf_keras

    return tf, tf_keras


def compiled_predict(model, chunk: int = 32):
    """A function (float32 array [N,...] -> probabilities [N,K]) that runs model(x, training=False)
    compiled once for a fixed chunk of images and feeds it `chunk` images at a time (the last chunk
    padded): memory is one chunk's activations, whatever N is, and nothing is kept between calls
    (Keras' model.predict builds a data pipeline per call and grew memory across calls)."""
    import tensorflow as tf

    shape = [chunk, *model.input_shape[1:]]
    call = tf.function(lambda x: model(x, training=False), jit_compile=False).get_concrete_function(
        tf.TensorSpec(shape, tf.float32)
    )

    def predict(pixels: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(pixels), chunk):
            part = pixels[start : start + chunk]
            padded = np.zeros(shape, np.float32)
            padded[: len(part)] = part
            out.append(call(tf.constant(padded)).numpy()[: len(part)])
        return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)

    return predict


class KerasClassifier:
    """The run's model.keras on TensorFlow. run(batch) is the compiled call; run_predict_on_batch
    is Keras' convenience path, kept only to show what it costs."""

    name = KERAS_NAME

    def __init__(self, model_path: Path, labels: list[str], trace_batch: int | None = None):
        tf, _ = import_keras()

        from edgeclf.training.models import load_model

        self._tf = tf
        self.model = load_model(model_path)
        self.labels = labels
        self.engine = f"TensorFlow {tf.__version__} ({'GPU' if tf.config.get_visible_devices('GPU') else 'CPU'})"
        self.version = f"tensorflow {tf.__version__}"
        self.kernels = "default"
        self._call = tf.function(lambda x: self.model(x, training=False), jit_compile=False)
        self._traced: dict[int, object] = {}
        if trace_batch:
            self._concrete(trace_batch)

    def _concrete(self, batch: int):
        """The call traced for this batch size (fixed input signature), traced once."""
        if batch not in self._traced:
            shape = [batch, *self.model.input_shape[1:]]
            self._traced[batch] = self._call.get_concrete_function(self._tf.TensorSpec(shape, self._tf.float32))
        return self._traced[batch]

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._concrete(len(batch))(self._tf.constant(batch)).numpy()

    def run_predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.model.predict_on_batch(batch)

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float32)

    def finish(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        return np.concatenate(
            [self.run(self.prepare(pixels[i : i + batch_size])) for i in range(0, len(pixels), batch_size)]
        )
