"""`edgeclf bench`: latency and memory of the float Keras model and every artifact."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import (
    ENGINE_HELP,
    comma_ints,
    done,
    integrity_option,
    overrides,
    setting,
    user_errors,
)

HELP = (
    "Benchmark the float Keras model and every validated artifact, each in its own process: load time, first "
    "inference, latency percentiles, throughput per batch size, peak RSS, size, speedups; writes reports/bench.json. "
    "Defaults: the bench section of the run's config (configs/default.yaml)."
)
EXAMPLE = "Example: edgeclf bench runs/demo --threads 2 --warmup 20 --runs 200 --batch-sizes 1,8"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory with an export, or an export folder alone (on a device)."),
    threads: int | None = setting("bench.threads", "Inference threads (0: every core)."),
    warmup: int | None = setting("bench.warmup", "Untimed runs before timing."),
    runs: int | None = setting("bench.runs", "Timed runs per batch size."),
    seconds: float | None = setting("bench.seconds", "Time budget per batch size instead of --runs."),
    batch_sizes: str | None = setting("bench.batch_sizes", "Comma-separated batch sizes.", convert=comma_ints),
    device: str | None = setting("bench.device", "cpu | gpu"),
    engine: str | None = setting("bench.engine", ENGINE_HELP),
    integrity: bool = integrity_option(),
    out: Path | None = typer.Option(
        None, help="bench.json path (default RUN_DIR/reports/bench.json, or ./bench.json)."
    ),
    images: Path | None = typer.Option(
        None, help="Images to feed (default: the run's test split; required for an export folder)."
    ),
) -> None:
    from edgeclf.cli import render
    from edgeclf.core.config import load_config
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.core.run_directory import CONFIG
    from edgeclf.measure.bench import run_bench

    values, names = overrides(command, locals())
    if runs is not None and seconds is not None:
        raise EdgeclfError("--runs and --seconds: give one of them")
    if seconds is not None and seconds <= 0:
        raise EdgeclfError(f"--seconds {seconds:g}: must be above 0")
    values.pop("bench.seconds")  # applied below: a time budget replaces the configured run count
    own = Path(run_dir) / CONFIG
    options = load_config([own] if own.is_file() else [], values, names).bench
    if seconds is not None:
        options = options.model_copy(update={"runs": None, "seconds": seconds})
    result = run_bench(run_dir, options, out, images, integrity)
    render.bench_table(result.document)
    done(f": {result.path}")
