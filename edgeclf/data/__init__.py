"""Data: finding, checking and splitting a folder (dataset), streaming a split (decoded), packed
TFRecord datasets (packed), the tf.data training pipeline, class weights. Training side.
"""

from edgeclf.core.tensorflow_env import use_legacy_keras

use_legacy_keras()  # before any module of this package imports TensorFlow
