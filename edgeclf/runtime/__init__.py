"""What runs on the device: classifiers over LiteRT and ONNX Runtime, with NumPy and Pillow only.

Importing this package never imports TensorFlow. Preprocessing, label order and quantization
parameters come from the artifact's entry in artifacts.json.
"""

from edgeclf.runtime.artifact import ArtifactInfo, TensorInfo, read_artifacts
from edgeclf.runtime.classifier import Classifier

__all__ = ["ArtifactInfo", "TensorInfo", "Classifier", "read_artifacts"]
