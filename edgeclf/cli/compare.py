"""`edgeclf compare`: one report across runs and sweeps; the best model under a budget."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import done, user_errors

HELP = (
    "Compare runs and sweep trials: settings, float and int8 accuracy, agreement, size, p50/p99, training time, "
    "Pareto fronts; picks the most accurate int8 file within the budget and reports its test accuracy."
)
EXAMPLE = "Example: edgeclf compare sweeps/s1 runs/baseline --budget-ms 2 --budget-kb 500 --out compare/"


@user_errors
def command(
    paths: list[Path] = typer.Argument(..., help="Run directories and sweep folders."),
    out: Path = typer.Option(Path("compare"), "--out", "-o", help="Folder for compare.md/.html/.json and figures."),
    budget_ms: float | None = typer.Option(None, "--budget-ms", min=0, help="Largest int8 p50 latency (ms)."),
    budget_kb: float | None = typer.Option(None, "--budget-kb", min=0, help="Largest int8 file size (KiB)."),
    test: bool = typer.Option(True, "--test/--no-test", help="Evaluate the chosen file on the test split."),
) -> None:
    from edgeclf.experiments.compare import compare, verdict

    result = compare(paths, out, budget_ms, budget_kb, test=test)
    done(f": {len(result.rows)} rows. {verdict(result)} Report: {out / 'compare.md'}")
