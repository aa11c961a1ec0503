"""`edgeclf evaluate`: accuracy, per-class metrics and confusion matrices of every artifact."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import ENGINE_HELP, comma_list, done, user_errors

HELP = (
    "Evaluate the float Keras model and every exported artifact on a split: accuracy, top-5, per-class "
    "precision/recall/F1, confusion matrices, agreement with the float model; writes reports/eval.json."
)
EXAMPLE = "Example: edgeclf evaluate runs/demo --split test --artifacts tflite-int8-qat,onnx-int8-ptq"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    split: str = typer.Option("test", help="train | val | test"),
    artifacts: str | None = typer.Option(None, help="Comma-separated artifact names (default: all)."),
    engine: str = typer.Option("auto", help=ENGINE_HELP),
) -> None:
    from edgeclf.cli import render
    from edgeclf.measure.evaluate import evaluate_run

    result = evaluate_run(run_dir, split, comma_list(artifacts) if artifacts else None, engine)
    render.eval_table(result)
    done(f": {result.path}")
