"""tfmot QuantizeConfigs for the layers tfmot's default registry does not know: MobileNetV3's
HardSigmoid and HardSwish (edgeclf.training.hard_activations) and Keras' Multiply (its
squeeze-excite). Each is quantized at its output, as tfmot quantizes a ReLU's."""

from __future__ import annotations

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from edgeclf.training.hard_activations import HardSigmoid, HardSwish


@keras.saving.register_keras_serializable(package="edgeclf")
class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """No weights; the layer's output quantized to 8 bits (asymmetric, per tensor), with the
    moving-average range tfmot gives every activation."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [
            tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self):
        return {}


OUTPUT_QUANTIZED = (HardSigmoid, HardSwish, keras.layers.Multiply)
# what a QAT model file needs to load (inside tfmot's quantize_scope)
CUSTOM_OBJECTS = {"HardSigmoid": HardSigmoid, "HardSwish": HardSwish, "OutputQuantizeConfig": OutputQuantizeConfig}


def annotate(layer):
    """clone_model's clone_function for QAT: the layers above get OutputQuantizeConfig, every other
    layer tfmot's default annotation."""
    if isinstance(layer, OUTPUT_QUANTIZED):
        return tfmot.quantization.keras.quantize_annotate_layer(layer, OutputQuantizeConfig())
    return tfmot.quantization.keras.quantize_annotate_layer(layer)


def needs_annotation(model) -> bool:
    """Whether the model holds a layer that tfmot's quantize_model cannot quantize by itself."""
    return any(isinstance(layer, OUTPUT_QUANTIZED) for layer in model.layers)
