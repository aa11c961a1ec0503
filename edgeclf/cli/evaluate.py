"""`edgeclf evaluate`: accuracy, per-class metrics and confusion matrices of every artifact."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import ENGINE_HELP, comma_list, done, overrides, setting, user_errors

HELP = (
    "Evaluate the float Keras model and every exported artifact on a split: accuracy, top-5, per-class "
    "precision/recall/F1, confusion matrices, agreement with the float model; writes reports/eval.json."
)
EXAMPLE = "Example: edgeclf evaluate runs/demo --split test --artifacts tflite-int8-qat,onnx-int8-ptq"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    split: str | None = setting("evaluate.split", "train | val | test"),
    artifacts: str | None = typer.Option(None, help="Comma-separated artifact names (default: all)."),
    engine: str | None = setting("evaluate.engine", ENGINE_HELP),
) -> None:
    from edgeclf.cli import render
    from edgeclf.core.config import load_config
    from edgeclf.measure.evaluate import evaluate_run

    values, names = overrides(command, locals())
    options = load_config([], values, names).evaluate
    result = evaluate_run(run_dir, options.split, comma_list(artifacts) if artifacts else None, options.engine)
    render.eval_table(result)
    done(f": {result.path}")
