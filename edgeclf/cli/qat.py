"""`edgeclf qat`: quantization-aware fine-tuning of a run's float model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = "Quantization-aware training (tensorflow-model-optimization) of a trained run; writes qat_model.h5."
EXAMPLE = "Example: edgeclf qat runs/demo --epochs 1"
OPTIONS = {"qat.epochs": "--epochs", "qat.learning_rate": "--learning-rate"}


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory made by edgeclf train."),
    epochs: Optional[int] = typer.Option(None, help="QAT fine-tuning epochs."),
    learning_rate: Optional[float] = typer.Option(None, help="Adam learning rate for QAT."),
) -> None:
    from edgeclf.qat import run_qat

    result = run_qat(
        run_dir,
        overrides={"qat.epochs": epochs, "qat.learning_rate": learning_rate},
        option_names=OPTIONS,
        console=console,
    )
    console.print(f"[bold green]done[/] in {result.seconds:.0f}s: {result.path}")
