"""`edgeclf qat`: quantization-aware fine-tuning of a run's float model."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli import render
from edgeclf.cli._common import done, overrides, setting, user_errors, verbose_stages

HELP = "Quantization-aware training (tensorflow-model-optimization) of a trained run; writes qat_model.h5."
EXAMPLE = "Example: edgeclf qat runs/demo --epochs 1"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory made by edgeclf train."),
    epochs: int | None = setting("qat.epochs", "QAT fine-tuning epochs."),
    learning_rate: float | None = setting("qat.learning_rate", "Adam learning rate for QAT."),
    strategy: str | None = setting(
        "train.strategy", "auto | none | mirrored | multiworker (the run's train.strategy unless given)."
    ),
) -> None:
    from edgeclf.training.qat import run_qat

    values, names = overrides(command, locals())
    result = run_qat(run_dir, overrides=values, option_names=names)
    if not result.wrote:
        done(f" in {result.seconds:.0f}s as a worker: the chief writes {result.path}")
        return
    if verbose_stages[0]:
        render.timings_table("qat", result.timings or {})
    done(f" in {result.seconds:.0f}s: {result.path}")
