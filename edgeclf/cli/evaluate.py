"""`edgeclf evaluate`: accuracy, per-class metrics and confusion matrices of every artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Evaluate the float Keras model and every exported artifact on a split: accuracy, top-5, per-class "
    "precision/recall/F1, confusion matrices, agreement with the float model; writes reports/eval.json."
)
EXAMPLE = "Example: edgeclf evaluate runs/demo --split test --artifacts tflite-int8-qat,onnx-int8-ptq"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    split: str = typer.Option("test", help="train | val | test"),
    artifacts: Optional[str] = typer.Option(None, help="Comma-separated artifact names (default: all)."),
) -> None:
    from edgeclf.evaluate import evaluate_run

    names = [a.strip() for a in artifacts.split(",") if a.strip()] if artifacts else None
    result = evaluate_run(run_dir, split, names, console=console)
    console.print(f"[bold green]done[/]: {result.path}")
