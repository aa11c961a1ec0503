"""From-scratch MobileNetV2 on small data, over several seeds, in a fresh process (so that
TF_ENABLE_ONEDNN_OPTS, read when TensorFlow loads, can be set per run):

    TF_ENABLE_ONEDNN_OPTS=0 python -m tests.from_scratch OUT_DIR 1,2,3

Prints one JSON object: {seed: validation accuracy of the saved model}."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from tests.recipes import FROM_SCRATCH  # noqa: E402 (after the environment TensorFlow reads)

# 4 classes x 60 images (42 train, 9 val, 9 test each), 32 px: MobileNetV2's last feature map is 1x1
OVERRIDES = FROM_SCRATCH  # tests/recipes.py
CLASSES = ["trouser", "bag", "sandal", "pullover"]


def run(out: Path, seeds: list[int], overrides: dict | None = None) -> dict[int, float]:
    from edgeclf.core.config import load_config
    from edgeclf.training.train import train
    from tests.helpers import class_folders

    data = class_folders(out / "data", CLASSES, 60)
    results = {}
    for seed in seeds:
        cfg = load_config(overrides={**OVERRIDES, **(overrides or {}), "seed": seed})
        results[seed] = train(data, out / f"run-{seed}", cfg).val_accuracy
    return results


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), [int(s) for s in sys.argv[2].split(",")])))
