"""Training: the stage (train), backbones (models, weights, weights_file), callbacks, tf.distribute
strategies, quantization-aware training, curves. Training side: TensorFlow.
"""

from edgeclf.core.tensorflow_env import use_legacy_keras

use_legacy_keras()  # before any module of this package imports TensorFlow
