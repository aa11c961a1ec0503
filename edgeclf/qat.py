"""`edgeclf qat`: quantization-aware training of a run's float model (tensorflow-model-optimization).

The float model minus its `normalize` layer is wrapped by tfmot's quantize_model and fine-tuned
briefly on the training split at a low rate; the validation loss is monitored and the best weights
are kept as qat_model.h5 (it takes normalised input, x / 127.5 - 1). qat.json records the float
and QAT validation accuracies and the history.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edgeclf.errors import EdgeclfError
from edgeclf.run import QAT_SUMMARY, Run
from edgeclf.rundir import atomic_write_json

UNSUPPORTED = {
    "mobilenet_v3_small": "MobileNetV3's hard-swish is built from TFOpLambda layers",
    "mobilenet_v3_large": "MobileNetV3's hard-swish is built from TFOpLambda layers",
}


class QatUnsupported(EdgeclfError):
    """tfmot cannot quantize this architecture."""


@dataclass
class QatResult:
    float_val_accuracy: float
    qat_val_accuracy: float
    epochs_run: int
    seconds: float
    path: Path


def run_qat(
    run_dir: Path, *, overrides: dict | None = None, option_names: dict | None = None, console: Console | None = None
) -> QatResult:
    console = console or Console(highlight=False)
    run = Run.open(run_dir)
    cfg = run.config(overrides, option_names)
    name = run.metadata["model"]["name"]
    if name in UNSUPPORTED:
        raise QatUnsupported(
            f"qat: {UNSUPPORTED[name]}, which tensorflow-model-optimization cannot quantize; "
            f"use post-training quantization instead: edgeclf export {run.path} --int8"
        )
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from edgeclf.callbacks import EpochLog
    from edgeclf.models import load_model, save_model, without_normalization
    from edgeclf.pipeline import build_augmenter, make_dataset

    started = time.perf_counter()
    keras.utils.set_random_seed(cfg.seed)
    model = load_model(run.model_path)
    core = without_normalization(model)
    for layer in core.layers:
        # BatchNorm stays in inference mode: its statistics were settled by training, and letting QAT
        # re-estimate them moves the model away from the float one it should match.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    qat = tfmot.quantization.keras.quantize_model(core)
    norm = run.metadata["normalization"]
    classes = len(run.classes)
    data = run.dataset
    common = dict(num_classes=classes, data=cfg.data.model_copy(update={"cache": "memory"}), seed=cfg.seed)
    # the training recipe continues: the same augmentation as `edgeclf train` (QAT on clean images
    # alone moves the model away from the float one it must stay close to)
    train_raw = make_dataset(
        *data.files_and_labels("train"), training=True, augment=build_augmenter(cfg.augment, cfg.seed), **common
    )
    val_raw = make_dataset(*data.files_and_labels("val"), training=False, **common)
    normalize = lambda x, y: (x * norm["scale"] + norm["offset"], y)  # noqa: E731
    train_ds, val_ds = train_raw.map(normalize), val_raw.map(normalize)

    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    _, float_acc = model.evaluate(val_raw, verbose=0)
    qat.compile(
        optimizer=keras.optimizers.Adam(cfg.qat.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
        metrics=["accuracy"],
    )
    console.print(
        f"QAT: {cfg.qat.epochs} epoch(s) at learning rate {cfg.qat.learning_rate:g}; "
        f"float validation accuracy {float_acc:.4f}"
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="edgeclf-qat-") as tmp:
        best = Path(tmp) / "best.weights.h5"
        qat.fit(
            train_ds,
            validation_data=val_ds,
            epochs=cfg.qat.epochs,
            verbose=0,
            callbacks=[
                EpochLog(rows, "qat", cfg.qat.epochs, console),
                keras.callbacks.ModelCheckpoint(
                    str(best), monitor="val_loss", save_best_only=True, save_weights_only=True
                ),
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.qat.early_stopping_patience),
            ],
        )
        if not best.exists():
            raise EdgeclfError("qat: the validation loss was never finite; lower --learning-rate")
        qat.load_weights(str(best))
    _, qat_acc = qat.evaluate(val_ds, verbose=0)
    save_model(qat, run.qat_model_path)
    seconds = time.perf_counter() - started
    atomic_write_json(
        run.path / QAT_SUMMARY,
        {
            "model": run.qat_model_path.name,
            "source": run.model_path.name,
            "input": "normalized",
            "normalization": norm,
            "epochs": cfg.qat.epochs,
            "epochs_run": len(rows),
            "learning_rate": cfg.qat.learning_rate,
            "float_val_accuracy": float(float_acc),
            "qat_val_accuracy": float(qat_acc),
            "history": rows,
            "seconds": round(seconds, 1),
            "versions": {"tensorflow": tf.__version__, "tfmot": tfmot.__version__},
        },
    )
    console.print(
        f"validation accuracy: float {float_acc:.4f}, QAT {qat_acc:.4f} ({(qat_acc - float_acc) * 100:+.2f} points)"
    )
    return QatResult(float(float_acc), float(qat_acc), len(rows), seconds, run.qat_model_path)
