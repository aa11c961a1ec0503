"""`edgeclf report`: report.md and report.html, merging bench files from several devices."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import done, user_errors

HELP = (
    "Write report.md and a self-contained report.html: per device one table (size, accuracy, Δ vs float, agreement, "
    "latency percentiles, throughput, speedups) and plots; several bench files merge into one table with a device "
    "column."
)
EXAMPLE = "Example: edgeclf report runs/demo pi4.json pi5.json --out runs/demo/reports"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory (with reports/eval.json)."),
    more_bench: list[Path] | None = typer.Argument(None, help="bench.json files from other devices."),
    out: Path | None = typer.Option(None, help="Output folder (default RUN_DIR/reports)."),
) -> None:
    from edgeclf.measure.report import build_report

    result = build_report(run_dir, more_bench or [], out)
    done(f": {result.markdown} and {result.html} ({len(result.devices)} device(s))")
