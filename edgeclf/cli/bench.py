"""`edgeclf bench`: latency and memory of the float Keras model and every artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Benchmark the float Keras model and every validated artifact, each in its own process: load time, first "
    "inference, latency percentiles, throughput per batch size, peak RSS, size, speedups; writes reports/bench.json."
)
EXAMPLE = "Example: edgeclf bench runs/demo --threads 2 --warmup 20 --runs 200 --batch-sizes 1,8"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory with an export, or an export folder alone (on a device)."),
    threads: int = typer.Option(0, help="Inference threads (0: all cores)."),
    warmup: int = typer.Option(20, help="Untimed runs before timing."),
    runs: Optional[int] = typer.Option(None, help="Timed runs per batch size (default 200)."),
    seconds: Optional[float] = typer.Option(None, help="Time budget per batch size instead of --runs."),
    batch_sizes: str = typer.Option("1,8", help="Comma-separated batch sizes."),
    device: str = typer.Option("cpu", help="cpu | gpu"),
    out: Optional[Path] = typer.Option(
        None, help="bench.json path (default RUN_DIR/reports/bench.json, or ./bench.json)."
    ),
    images: Optional[Path] = typer.Option(
        None, help="Images to feed (default: the run's test split; required for an export folder)."
    ),
) -> None:
    import os

    from edgeclf.bench import BenchOptions, run_bench
    from edgeclf.errors import EdgeclfError

    try:
        sizes = tuple(int(b) for b in batch_sizes.split(",") if b.strip())
    except ValueError:
        raise EdgeclfError(f"--batch-sizes {batch_sizes}: expected integers such as 1,8") from None
    if not sizes or min(sizes) < 1:
        raise EdgeclfError(f"--batch-sizes {batch_sizes}: expected positive integers such as 1,8")
    if device not in ("cpu", "gpu"):
        raise EdgeclfError(f"--device {device}: expected cpu or gpu")
    if runs is not None and seconds is not None:
        raise EdgeclfError("--runs and --seconds: give one of them")
    options = BenchOptions(
        threads=threads or os.cpu_count() or 1,
        warmup=warmup,
        runs=runs if runs is not None or seconds is not None else 200,
        seconds=seconds,
        batch_sizes=sizes,
        device=device,
    )
    path = run_bench(run_dir, options, out, images, console=console)
    console.print(f"[bold green]done[/]: {path}")
