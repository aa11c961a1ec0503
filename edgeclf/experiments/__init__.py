"""Experiments: hyper-parameter sweeps (Optuna), trials, the search space, compare across runs."""

from edgeclf.core.tensorflow_env import use_legacy_keras

use_legacy_keras()  # before any module of this package imports TensorFlow
