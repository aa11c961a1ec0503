"""edgeclf: from a folder of labelled images to deployable, measured edge classifiers.

Importing edgeclf changes nothing in the process; the training-side packages set the one variable
TensorFlow needs before they import it (edgeclf.core.tensorflow_env)."""

__version__ = "0.1.0"
