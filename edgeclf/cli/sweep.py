"""`edgeclf sweep`: Optuna over model size, resolution and training settings; each trial a full run."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import done, overrides, setting, user_errors

HELP = (
    "Search model, width, resolution and training settings (Optuna, multi-objective: int8 validation accuracy, "
    "int8 p50 latency on this machine, file size); every trial is a complete trained, exported and benched run. "
    "Resumes from --out after an interruption."
)
EXAMPLE = (
    "Example: edgeclf sweep photos/ --out sweeps/s1 --space space.yaml --trials 12 && "
    "edgeclf compare sweeps/s1 --budget-ms 2"
)


@user_errors
def command(
    data_dir: str = typer.Argument(..., help="Data folder or pack, as for edgeclf train."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep folder (created; an existing one is resumed)."),
    space: Path | None = typer.Option(None, "--space", help="space.yaml (needed on the first run; kept in --out)."),
    trials: int | None = typer.Option(
        None, "--trials", min=1, help="Trials wanted, completed or pruned (default: the space's)."
    ),
    jobs: int | None = setting("sweep.jobs", "Trials run at once.", "--jobs"),
    runs: int | None = setting("sweep.runs", "Timed runs of each trial's bench.", "--runs"),
    threads: int | None = setting(
        "sweep.threads", "Inference threads for each trial's bench (0: every core).", "--threads"
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL shared by several sweeps (default: sqlite in --out)."
    ),
    budget_ms: float | None = typer.Option(None, "--budget-ms", min=0, help="Report the best trial within this p50."),
    budget_kb: float | None = typer.Option(None, "--budget-kb", min=0, help="... and within this int8 size (KiB)."),
) -> None:
    from edgeclf.core.config import load_config
    from edgeclf.experiments.sweep import run_sweep

    values, names = overrides(command, locals())
    options = load_config([], values, names).sweep
    result = run_sweep(
        data_dir, out, space, options, trials=trials, storage=storage, budget_ms=budget_ms, budget_kb=budget_kb
    )
    b = result.best
    within = "within the budget" if budget_ms is not None or budget_kb is not None else "overall"
    best = (
        f"most accurate int8 trial {within} (validation accuracy, latency on this machine): {b.name}, "
        f"{b.val_accuracy_int8:.2%}, p50 {b.p50_ms:.3f} ms, {b.size_bytes / 1024:.0f} KiB"
        if b
        else "no trial fits the budget"
    )
    counts = f"{result.completed} trial(s) complete, {result.pruned} pruned, {result.failed} failed this time"
    done(f" in {result.seconds:.0f}s: {counts}: {out}; {best}; edgeclf compare {out} for the report and test accuracy")
