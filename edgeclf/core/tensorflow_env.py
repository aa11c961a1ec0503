"""The one process setting the training side needs before TensorFlow is first imported:
tensorflow-model-optimization supports only Keras 2 (tf_keras), which TensorFlow picks when
TF_USE_LEGACY_KERAS=1 is set before its import. The training-side packages (data, training,
export, measure, experiments) and the CLI call `use_legacy_keras()` when they are imported; the
device side (core, runtime, device) never does, so a program that embeds only the runtime keeps
its environment as it was. TensorFlow's C++ start-up chatter is hidden unless the user set a level."""

from __future__ import annotations

import os


def use_legacy_keras() -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
