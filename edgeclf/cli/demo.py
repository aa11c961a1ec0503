"""`edgeclf demo`: the whole pipeline on the embedded dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import console, user_errors

HELP = "Run the whole pipeline (train, qat, export --int8, evaluate, bench, report) on the embedded Fashion-MNIST subset, in a few minutes on 2 CPU cores."
EXAMPLE = "Example: edgeclf demo --out runs/demo"


@user_errors
def command(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory to create."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
) -> None:
    from edgeclf.demo import run_demo

    run_demo(out, overwrite=overwrite, console=console)
