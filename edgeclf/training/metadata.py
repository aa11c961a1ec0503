"""metadata.json, the run's description for every later stage and runner: what the model takes and
gives (input, output, preprocessing, normalisation, labels), how it was made (weights, phases,
distribution, class weights) and with which versions."""

from __future__ import annotations

import platform
from datetime import datetime, timezone

from edgeclf import __version__
from edgeclf.core.config import Config
from edgeclf.core.images import PREPROCESSING
from edgeclf.core.run_directory import MODEL
from edgeclf.data.class_weights import class_weights
from edgeclf.data.dataset import Dataset
from edgeclf.training.fit import Fitted


def run_metadata(cfg: Config, data: Dataset, fitted: Fitted, seconds: float) -> dict:
    """metadata.json: what the model takes and gives, how it was made, and with which versions."""
    import numpy as np
    import PIL
    import tensorflow as tf
    import tf_keras as keras

    from edgeclf.training.models import NORMALIZATION

    model = fitted.model
    size = cfg.data.image_size
    best = fitted.best
    return {
        "edgeclf_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "classes": data.classes,
        "model": {
            "file": MODEL,
            "name": cfg.model.name,
            "alpha": cfg.model.alpha,
            "parameters": int(model.count_params()),
            "input": {
                "name": model.input_names[0],
                "shape": [None, size, size, 3],
                "dtype": "float32",
                "layout": "NHWC",
                "range": [0, 255],
            },
            "output": {"name": model.output_names[0], "shape": [None, len(data.classes)], "activation": "softmax"},
        },
        "preprocessing": {**PREPROCESSING, "size": [size, size]},
        "normalization": {**NORMALIZATION, "applied_in": "model"},
        "weights": fitted.weights.to_json(),
        "batchnorm_momentum": fitted.bn_momentum,
        "batchnorm_precise_batches": fitted.precise_bn_batches,
        "training": {
            "phases": [p.to_json() for p in fitted.phases],
            "epochs_run": len(fitted.rows),
            "best_epoch": int(best["epoch"]),
            "best_phase": best["phase"],
            "val_loss": fitted.val_loss,
            "val_accuracy": fitted.val_accuracy,
            "seconds": round(seconds, 1),
            "seed": cfg.seed,
            "deterministic": cfg.train.deterministic,
            "devices": fitted.devices,
            "mixed_precision": fitted.mixed_precision,
            "distribution": fitted.distribution,
            "class_weights": _class_weights_record(cfg, data),
            "timings": fitted.timings,  # this process's steps (a resumed run: since the resume)
        },
        "dataset": {
            "layout": data.layout,
            "counts": {s: sum(c.values()) for s, c in data.counts().items()},
            "skipped": len(data.skipped),
            "ignored": len(data.ignored),
        },
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "platform": platform.platform(),
        },
    }


def _class_weights_record(cfg: Config, data: Dataset) -> dict | None:
    """{class name: weight} as applied (None: unweighted)."""
    weights = class_weights(cfg.train.class_weights, data.classes, data.counts().get("train", {}))
    return None if weights is None else {data.classes[i]: round(w, 6) for i, w in weights.items()}
