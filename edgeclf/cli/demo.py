"""`edgeclf demo`: the whole pipeline on the embedded dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Run the whole pipeline (train, qat, export --int8, evaluate, bench, report) on the embedded Fashion-MNIST "
    "subset, in a few minutes on 2 CPU cores."
)
EXAMPLE = "Example: edgeclf demo --out runs/demo"


@user_errors
def command(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory to create."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
) -> None:
    from edgeclf.cli import render
    from edgeclf.demo import RUN_FILES, run_demo

    renderers = {
        "data": render.dataset_summary,
        "export": render.export_table,
        "evaluate": render.eval_table,
        "bench": lambda result: render.bench_table(result.document),
    }
    headings = {"qat": "quantization-aware training", "export": "export", "evaluate": "evaluate", "bench": "bench"}

    def on_stage(name: str, result) -> None:
        if result is None and name in headings:
            console.rule(headings[name])
        elif result is not None and name in renderers:
            renderers[name](result)

    result = run_demo(out, overwrite=overwrite, on_stage=on_stage)
    run = result.train.run_dir
    console.print(
        f"\n[bold green]demo finished[/] in {result.seconds:.0f}s; validation accuracy {result.train.val_accuracy:.4f}"
    )
    for name, what in RUN_FILES.items():
        if (run / name).exists():
            console.print(f"  {run / name}  {what}", markup=False)
    console.print(
        f"next: edgeclf predict {run} some_image.png   |   edgeclf train YOUR_FOLDER --out runs/mine", markup=False
    )
    console.print(f"report: {result.report.html}  (and {result.report.markdown.name})", markup=False)
