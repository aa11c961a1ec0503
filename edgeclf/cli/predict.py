"""`edgeclf predict`: top-k labels per image (no TensorFlow needed)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgeclf.cli._common import ENGINE_HELP, integrity_option, overrides, setting, user_errors

HELP = (
    "Classify images with a run's artifact (default: the best int8) or a bare .tflite/.onnx; "
    "prints the top-k labels and probabilities."
)
EXAMPLE = "Example: edgeclf predict runs/demo photo.jpg more_photos/ --top-k 3 --json"


@user_errors
def command(
    model: Path = typer.Argument(..., help="Run directory, export folder, or a .tflite/.onnx file."),
    images: list[Path] = typer.Argument(..., help="Image files and/or folders."),
    artifact: str | None = typer.Option(None, help="Artifact name from artifacts.json (e.g. tflite-int8-qat)."),
    top_k: int | None = setting("predict.top_k", "Labels per image.", "--top-k"),
    as_json: bool = typer.Option(False, "--json", help="One JSON array, an object per image."),
    threads: int | None = setting("predict.threads", "Inference threads (0: every core)."),
    kernels: str | None = setting(
        "predict.kernels",
        "fast (the engine's default) or reference: LiteRT's portable kernels, slow but bit-identical on every "
        "CPU (for checking a device against a workstation).",
    ),
    engine: str | None = setting("predict.engine", ENGINE_HELP),
    max_pixels: int | None = setting("predict.max_pixels", "Larger images are refused from their header."),
    integrity: bool = integrity_option(),
) -> None:
    from edgeclf.cli import render
    from edgeclf.cli._common import messages_to_stderr
    from edgeclf.device.predict import predict
    from edgeclf.device.settings import device_settings

    if as_json:
        messages_to_stderr()  # stdout is the JSON array alone
    values, names = overrides(command, locals())
    result = predict(model, images, device_settings(model, values, names).predict, artifact, integrity)
    if as_json:
        print(json.dumps(result.results, indent=2))
    else:
        render.predict_table(result)
