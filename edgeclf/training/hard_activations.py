"""MobileNetV3's hard-sigmoid and hard-swish as Keras layers that tfmot can quantize.

Keras' MobileNetV3 builds them from TensorFlow ops (`ReLU(6)(x + 3) * (1 / 6)`: TFOpLambda layers),
which tensorflow-model-optimization cannot wrap (tensorflow/model-optimization #1145, #867), and its
squeeze-excite multiplies with `layers.Multiply`, which tfmot's default registry does not list. So
edgeclf builds MobileNetV3 with HardSigmoid and HardSwish layers (the same arithmetic, no weights:
ImageNet weights load as before, by layer order and name, onto the same conv and BatchNorm layers)
and QAT gives these layers and Multiply an output quantizer (edgeclf.training.quantize_configs). The
TFLite converter computes the ops inside each layer in int8 from the representative dataset's ranges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf
import tf_keras as keras


@keras.saving.register_keras_serializable(package="edgeclf")
class HardSigmoid(keras.layers.Layer):
    """relu6(x + 3) / 6."""

    def call(self, inputs):
        return tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)


@keras.saving.register_keras_serializable(package="edgeclf")
class HardSwish(keras.layers.Layer):
    """x * relu6(x + 3) / 6."""

    def call(self, inputs):
        return inputs * tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)


@contextlib.contextmanager
def quantizable_mobilenet_v3() -> Iterator[None]:
    """While Keras builds a MobileNetV3: its hard_sigmoid and hard_swish (module functions that its
    blocks look up when they run) make the layers above; restored after."""
    from tf_keras.src.applications import mobilenet_v3

    saved = mobilenet_v3.hard_sigmoid, mobilenet_v3.hard_swish
    mobilenet_v3.hard_sigmoid = lambda x: HardSigmoid()(x)
    mobilenet_v3.hard_swish = lambda x: HardSwish()(x)
    try:
        yield
    finally:
        mobilenet_v3.hard_sigmoid, mobilenet_v3.hard_swish = saved


def has_op_layers(model) -> bool:
    """Whether the model holds TFOpLambda layers (a MobileNetV3 built by Keras' own functions)."""
    return any(type(layer).__name__ == "TFOpLambda" for layer in model.layers)
