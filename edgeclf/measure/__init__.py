"""Measurement: evaluate (accuracy of every artifact), metrics, bench (latency) and its worker, the
Keras float baseline, report and plots.
"""

from edgeclf.core.tensorflow_env import use_legacy_keras

use_legacy_keras()  # before any module of this package imports TensorFlow
