"""`edgeclf doctor`: versions, engines, CPU features, Keras in effect; each problem with its fix."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Check this machine: Python and package versions, whether Keras 2 is what TensorFlow gives (tfmot needs it), "
    "which engines can run here, CPU features (VNNI, bf16, AMX, NEON dot product), GPUs, free disk. Each problem is "
    "one line with what to do. Exits 1 when --training is asked for and the training side cannot work."
)
EXAMPLE = "Example: edgeclf doctor --training"


@user_errors
def command(
    training: bool = typer.Option(False, "--training", help="The training side is needed here: its problems fail."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
    folder: Path | None = typer.Option(None, help="Folder whose free disk is reported (default: the current one)."),
) -> None:
    from edgeclf.cli import render
    from edgeclf.device.doctor import diagnose

    report = diagnose(training, folder or Path.cwd())
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        render.doctor_table(report)
    if report.failed:
        if not as_json:
            console.print(f"doctor: {len(report.failed)} problem(s) stop the training side here", markup=False)
        raise typer.Exit(1)
