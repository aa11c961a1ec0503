"""edgeclf: from a folder of labelled images to deployable, measured edge classifiers."""

import os

# tensorflow-model-optimization supports only Keras 2 (tf_keras). This must be set before
# TensorFlow is first imported, so the package sets it on import; edgeclf itself always imports
# `tf_keras` by name. TensorFlow's C++ start-up chatter is hidden unless the user asks for it.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
