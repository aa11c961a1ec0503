"""What runs on the device: classifiers over LiteRT, ONNX Runtime and OpenVINO, with NumPy and
Pillow only.

Importing this package never imports TensorFlow. Preprocessing, label order and quantization
parameters come from the artifact's entry in artifacts.json. Every error is an EdgeclfError; the
kinds a program can act on have their own class (edgeclf.core.errors): IntegrityError,
EngineMissingError, EngineUnsupportedError, ModelFileError, MalformedIndexError, BundleError.
"""

from edgeclf.core.errors import (
    BundleError,
    EdgeclfError,
    EngineMissingError,
    EngineUnsupportedError,
    IntegrityError,
    MalformedIndexError,
    ModelFileError,
)
from edgeclf.runtime.artifact import ArtifactInfo, TensorInfo, read_artifacts
from edgeclf.runtime.classifier import Classifier

__all__ = [
    "ArtifactInfo",
    "BundleError",
    "Classifier",
    "EdgeclfError",
    "EngineMissingError",
    "EngineUnsupportedError",
    "IntegrityError",
    "MalformedIndexError",
    "ModelFileError",
    "TensorInfo",
    "read_artifacts",
]
