"""The training stage: data folder -> run directory with the best float model.

Phase 1 trains the new head on a frozen pretrained backbone (or the whole network when the backbone
starts from random weights); phase 2 fine-tunes the top backbone layers at a low rate. Early
stopping watches the validation loss; the best weights across both phases are checkpointed and
become model.keras.
"""

from __future__ import annotations

import math
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from edgeclf import __version__
from edgeclf.config import Config
from edgeclf.curves import plot_curves, write_history_csv
from edgeclf.dataset import Dataset, discover
from edgeclf.errors import EdgeclfError
from edgeclf.images import PREPROCESSING
from edgeclf.rundir import StagedRun, atomic_write_json, atomic_write_text, check_out_dir
from edgeclf.weights import WeightsRequest

MAX_LISTED = 50


@dataclass
class TrainResult:
    run_dir: Path
    classes: list[str]
    best_epoch: int
    val_accuracy: float
    val_loss: float
    weights_source: str
    seconds: float


def train(
    data_dir: Path, out: Path, cfg: Config, *, overwrite: bool = False, console: Console | None = None
) -> TrainResult:
    """Check and split data_dir, train as cfg says, and write the run directory out."""
    console = console or Console(highlight=False)
    check_out_dir(out, overwrite)
    WeightsRequest.parse(cfg.model.weights)  # a bad --weights fails before any work
    data = _discover(Path(data_dir), cfg, console)
    print_summary(data, console)
    started = time.perf_counter()
    with StagedRun(Path(out), overwrite) as stage:
        run = stage.path
        atomic_write_text(run / "config.yaml", cfg.to_yaml())
        atomic_write_json(run / "dataset.json", data.to_json())
        atomic_write_text(run / "labels.txt", "\n".join(data.classes) + "\n")
        fitted = _fit(data, cfg, run, console)
        seconds = time.perf_counter() - started
        write_history_csv(fitted["rows"], run / "history.csv")
        plot_curves(fitted["rows"], run / "curves.png", title=f"{cfg.model.name} on {Path(data_dir).name}")
        atomic_write_json(run / "metadata.json", _metadata(cfg, data, fitted, seconds))
    best = fitted["best"]
    return TrainResult(
        Path(out),
        data.classes,
        int(best["epoch"]),
        fitted["val_accuracy"],
        fitted["val_loss"],
        fitted["weights"].source,
        seconds,
    )


def _discover(data_dir: Path, cfg: Config, console: Console) -> Dataset:
    with Progress(
        TextColumn("checking images"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("check", total=None)
        return discover(
            data_dir,
            cfg.data.split,
            cfg.seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def print_summary(data: Dataset, console: Console) -> None:
    counts = data.counts()
    table = Table(title=f"{data.root} ({data.layout})", show_footer=True)
    table.add_column("class", footer="total")
    for split in counts:
        table.add_column(split, justify="right", footer=str(sum(counts[split].values())))
    for name in data.classes:
        table.add_row(name, *(str(counts[s][name]) for s in counts))
    console.print(table)
    for title, entries in (("skipped", data.skipped), ("ignored", data.ignored)):
        if not entries:
            continue
        console.print(
            f"[yellow]{title} {len(entries)} file(s)[/]"
            + (":" if title == "skipped" else " (hidden, or outside class folders):")
        )
        for entry in entries[:MAX_LISTED]:
            console.print(f"  {entry.path}: {entry.reason}", markup=False)
        if len(entries) > MAX_LISTED:
            console.print(f"  ... and {len(entries) - MAX_LISTED} more, listed in dataset.json")


def _fit(data: Dataset, cfg: Config, run: Path, console: Console) -> dict:
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(cfg.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    mixed = cfg.train.mixed_precision and bool(gpus)
    console.print(
        f"training on {', '.join(gpus) if gpus else 'the CPU'}" + (" with mixed precision (float16)" if mixed else "")
    )
    if cfg.train.mixed_precision and not gpus:
        console.print("[yellow]mixed precision asked for, but TensorFlow sees no GPU: training in float32[/]")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        return _fit_phases(data, cfg, run, console, gpus, mixed)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # later stages in this process build float32 models


def _fit_phases(data: Dataset, cfg: Config, run: Path, console: Console, gpus: list[str], mixed: bool) -> dict:
    import tf_keras as keras

    from edgeclf.callbacks import EpochLog, PreciseBatchNorm
    from edgeclf.models import build_classifier, save_model, set_trainable
    from edgeclf.pipeline import build_augmenter, make_dataset

    built = build_classifier(cfg.model, len(data.classes), cfg.data.image_size, log=console.print)
    model = built.model
    console.print(
        f"model {model.name}: {model.count_params():,} parameters, weights: {built.weights.source}"
        + (f" ({built.weights.note})" if built.weights.note else "")
    )

    cache = run / "cache"
    cache.mkdir()
    common = dict(num_classes=len(data.classes), data=cfg.data, seed=cfg.seed)
    train_ds = make_dataset(
        *data.files_and_labels("train"),
        training=True,
        augment=build_augmenter(cfg.augment, cfg.seed),
        cache_file=cache / "train",
        **common,
    )
    val_ds = make_dataset(*data.files_and_labels("val"), training=False, cache_file=cache / "val", **common)

    checkpoint = run / "checkpoints" / "best.weights.h5"
    checkpoint.parent.mkdir()
    rows: list[dict] = []
    phases = [
        ("head", cfg.train.epochs, cfg.train.learning_rate),
        ("fine_tune", cfg.train.fine_tune_epochs, cfg.train.fine_tune_learning_rate),
    ]
    total_epochs = cfg.train.epochs + cfg.train.fine_tune_epochs
    phase_log = []
    # BatchNorm trains only with a random backbone (a pretrained one keeps it frozen in both phases)
    precise_bn = [] if built.weights.pretrained else [PreciseBatchNorm(train_ds, cfg.train.precise_bn_batches)]
    for phase, epochs, lr in phases:
        if epochs == 0:
            continue
        trainable = set_trainable(built, phase, cfg.train.fine_tune_layers)
        best_so_far = min((r["val_loss"] for r in rows if math.isfinite(r["val_loss"])), default=None)
        phase_log.append(
            {
                "phase": phase,
                "epochs": epochs,
                "learning_rate": lr,
                "trainable_backbone_layers": trainable,
                "backbone_layers": len(built.backbone_layers),
            }
        )
        console.print(
            f"[bold]phase {phase}[/]: {epochs} epoch(s) at learning rate {lr:g}, "
            f"{trainable} of {len(built.backbone_layers)} backbone layers trainable"
        )
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
            metrics=["accuracy"],
        )
        done = len(rows)
        model.fit(
            train_ds,
            validation_data=val_ds,
            initial_epoch=done,
            epochs=done + epochs,
            verbose=0,
            callbacks=[
                EpochLog(rows, phase, total_epochs, console),
                keras.callbacks.ModelCheckpoint(
                    str(checkpoint),
                    monitor="val_loss",
                    save_best_only=True,
                    save_weights_only=True,
                    initial_value_threshold=best_so_far,
                ),
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.train.early_stopping_patience),
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss",
                    factor=cfg.train.reduce_lr_factor,
                    patience=cfg.train.reduce_lr_patience,
                    min_lr=cfg.train.min_learning_rate,
                ),
            ]
            + precise_bn,
        )
        if checkpoint.exists():
            model.load_weights(str(checkpoint))  # the next phase starts from the best weights so far
    if not checkpoint.exists():
        raise EdgeclfError(
            "training produced no usable model: the validation loss was never finite; "
            "lower --learning-rate or check the data"
        )
    for layer in model.layers:
        layer.trainable = True
    val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
    save_model(model, run / "model.keras")
    shutil.rmtree(cache)
    shutil.rmtree(checkpoint.parent)
    best = min((r for r in rows if math.isfinite(r["val_loss"])), key=lambda r: r["val_loss"])
    console.print(
        f"best epoch {best['epoch']} ({best['phase']}): val_loss {val_loss:.4f}, val_accuracy {val_accuracy:.4f}"
    )
    return {
        "rows": rows,
        "best": best,
        "phases": phase_log,
        "weights": built.weights,
        "model": model,
        "devices": gpus or ["CPU"],
        "mixed_precision": mixed,
        "val_loss": float(val_loss),
        "val_accuracy": float(val_accuracy),
        "bn_momentum": None if built.weights.pretrained else cfg.model.scratch_bn_momentum,
        "precise_bn_batches": None if built.weights.pretrained else cfg.train.precise_bn_batches,
    }


def _metadata(cfg: Config, data: Dataset, fitted: dict, seconds: float) -> dict:
    import numpy as np
    import PIL
    import tensorflow as tf
    import tf_keras as keras

    from edgeclf.models import NORMALIZATION

    model = fitted["model"]
    size = cfg.data.image_size
    best = fitted["best"]
    return {
        "edgeclf_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "classes": data.classes,
        "model": {
            "file": "model.keras",
            "name": cfg.model.name,
            "alpha": cfg.model.alpha if cfg.model.name != "small_cnn" else None,
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
        "weights": fitted["weights"].to_json(),
        "batchnorm_momentum": fitted["bn_momentum"],
        "batchnorm_precise_batches": fitted["precise_bn_batches"],
        "training": {
            "phases": fitted["phases"],
            "epochs_run": len(fitted["rows"]),
            "best_epoch": int(best["epoch"]),
            "best_phase": best["phase"],
            "val_loss": fitted["val_loss"],
            "val_accuracy": fitted["val_accuracy"],
            "seconds": round(seconds, 1),
            "seed": cfg.seed,
            "deterministic": cfg.train.deterministic,
            "devices": fitted["devices"],
            "mixed_precision": fitted["mixed_precision"],
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
