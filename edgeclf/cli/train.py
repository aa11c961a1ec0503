"""`edgeclf train`: data folder -> run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = "Train a classifier on a folder of labelled images (one sub-folder per class)."
EXAMPLE = (
    "Example: edgeclf train photos/ --out runs/flowers --model mobilenet_v2 --alpha 0.35 "
    "--image-size 96 --epochs 10 --fine-tune-epochs 5"
)

# dotted config key -> the option that sets it, so that errors name what the user typed
OPTIONS = {
    "model.name": "--model",
    "model.alpha": "--alpha",
    "model.weights": "--weights",
    "data.image_size": "--image-size",
    "data.batch_size": "--batch-size",
    "train.epochs": "--epochs",
    "train.fine_tune_epochs": "--fine-tune-epochs",
    "train.fine_tune_layers": "--fine-tune-layers",
    "train.learning_rate": "--learning-rate",
    "augment.enabled": "--augment/--no-augment",
    "seed": "--seed",
}


@user_errors
def command(
    data_dir: Path = typer.Argument(
        ..., help="Folder with one sub-folder per class, or train/ val/ test/ folders of those."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file overriding configs/default.yaml."),
    model: Optional[str] = typer.Option(
        None, help="mobilenet_v2 | mobilenet_v3_small | mobilenet_v3_large | small_cnn"
    ),
    alpha: Optional[float] = typer.Option(None, help="MobileNet width multiplier."),
    image_size: Optional[int] = typer.Option(None, help="Input size in pixels (square, at least 32)."),
    epochs: Optional[int] = typer.Option(None, help="Phase 1 epochs (head on a frozen backbone)."),
    fine_tune_epochs: Optional[int] = typer.Option(None, help="Phase 2 epochs (top layers unfrozen)."),
    fine_tune_layers: Optional[int] = typer.Option(None, help="Backbone layers unfrozen in phase 2."),
    batch_size: Optional[int] = typer.Option(None),
    learning_rate: Optional[float] = typer.Option(None, help="Phase 1 learning rate (Adam)."),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment", help="Training-time augmentation."),
    weights: Optional[str] = typer.Option(None, help="auto | imagenet | none | PATH (.h5 weights, or an earlier run)."),
    seed: Optional[int] = typer.Option(None, help="Seed for the split, initialisation and shuffling."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
) -> None:
    from edgeclf.config import load_config
    from edgeclf.train import train

    overrides = {
        "model.name": model,
        "model.alpha": alpha,
        "model.weights": weights,
        "data.image_size": image_size,
        "data.batch_size": batch_size,
        "train.epochs": epochs,
        "train.fine_tune_epochs": fine_tune_epochs,
        "train.fine_tune_layers": fine_tune_layers,
        "train.learning_rate": learning_rate,
        "augment.enabled": augment,
        "seed": seed,
    }
    cfg = load_config([config] if config else [], overrides, OPTIONS)
    result = train(data_dir, out, cfg, overwrite=overwrite, console=console)
    console.print(
        f"[bold green]done[/] in {result.seconds:.0f}s: {result.run_dir}  "
        f"(val accuracy {result.val_accuracy:.4f}, best epoch {result.best_epoch}, weights: {result.weights_source})"
    )
