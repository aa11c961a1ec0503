"""Export: a run's Keras models -> validated TFLite and ONNX artifacts (training side).

- formats.py: the one declarative table of artifacts (format, precision, engine, validation);
- convert.py and validate.py: the two public steps, as Hugging Face Optimum's exporters have them;
- stage.py: `export_run` (both steps for every selected artifact, then artifacts.json) and
  `revalidate_run`; gate.py: the statistics of the quantization gates; errors.py: typed failures;
- tflite.py, onnx.py, tflite_metadata.py: the converters; bundle.py: the device bundle.
Importing this package runs nothing: import the module you need.
"""

from edgeclf.core.tensorflow_env import use_legacy_keras

use_legacy_keras()  # before any module of this package imports TensorFlow
