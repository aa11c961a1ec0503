"""`edgeclf predict`: top-k labels per image (no TensorFlow needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgeclf.cli._common import console, user_errors

HELP = (
    "Classify images with a run's artifact (default: the best int8) or a bare .tflite/.onnx; "
    "prints the top-k labels and probabilities."
)
EXAMPLE = "Example: edgeclf predict runs/demo photo.jpg more_photos/ --top-k 3 --json"


@user_errors
def command(
    model: Path = typer.Argument(..., help="Run directory, export folder, or a .tflite/.onnx file."),
    images: list[Path] = typer.Argument(..., help="Image files and/or folders."),
    artifact: Optional[str] = typer.Option(None, help="Artifact name from artifacts.json (e.g. tflite-int8-qat)."),
    top_k: int = typer.Option(5, "--top-k", help="Labels per image."),
    as_json: bool = typer.Option(False, "--json", help="One JSON array, an object per image."),
    threads: Optional[int] = typer.Option(None, help="Inference threads."),
    kernels: str = typer.Option(
        "fast",
        help="fast (the engine's default) or reference: LiteRT's portable kernels, "
        "slow but bit-identical on every CPU (for checking a device against a workstation).",
    ),
) -> None:
    from edgeclf.predict import predict

    name, results = predict(model, images, artifact, top_k, threads, kernels)
    if as_json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title=f"{name}")
    table.add_column("image")
    table.add_column("top-k (probability)")
    table.add_column("invoke ms", justify="right")
    for r in results:
        if "error" in r:
            table.add_row(r["image"], f"[red]{r['error']}[/]", "")
        else:
            table.add_row(
                r["image"],
                ", ".join(f"{p['label']} ({p['probability']:.3f})" for p in r["top_k"]),
                f"{r['invoke_ms']:.3f}",
            )
    console.print(table)
