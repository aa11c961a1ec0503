"""`edgeclf export`: TFLite and ONNX artifacts, each validated against its source model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeclf.cli._common import console, user_errors

HELP = (
    "Export a run to TFLite and ONNX (float32, float16; with --int8 also full-integer int8), validate each "
    "artifact on the validation split, and index them in RUN_DIR/export/artifacts.json."
)
EXAMPLE = "Example: edgeclf export runs/demo --int8 --max-drop 1.0"
OPTIONS = {
    "export.formats": "--formats",
    "export.float16": "--float16/--no-float16",
    "export.dynamic": "--dynamic",
    "export.calibration_images": "--calibration-images",
    "export.max_drop": "--max-drop",
    "export.int8_source": "--int8-source",
    "export.int8_input": "--int8-input",
}


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory made by edgeclf train (and optionally edgeclf qat)."),
    int8: bool = typer.Option(False, "--int8", help="Also write full-integer int8 artifacts."),
    formats: Optional[str] = typer.Option(None, help="Comma-separated: tflite,onnx."),
    float16: Optional[bool] = typer.Option(None, "--float16/--no-float16", help="Also write a float16 TFLite."),
    dynamic: Optional[bool] = typer.Option(None, "--dynamic", help="Also write a dynamic-range TFLite."),
    int8_source: Optional[str] = typer.Option(None, help="auto | qat | ptq | both (TFLite int8)."),
    int8_input: Optional[str] = typer.Option(None, help="uint8 | int8 image input of the int8 TFLite."),
    calibration_images: Optional[int] = typer.Option(None, help="Class-balanced training images for calibration."),
    max_drop: Optional[float] = typer.Option(
        None, help="Fail when int8 validation accuracy drops more than this many points."
    ),
    bundle: Optional[Path] = typer.Option(
        None, help="Also pack artifacts.json and the validated files into this .tar.gz for a device."
    ),
) -> None:
    from edgeclf.export import export_run

    overrides = {
        "export.formats": [f.strip() for f in formats.split(",") if f.strip()] if formats is not None else None,
        "export.float16": float16,
        "export.dynamic": dynamic,
        "export.int8_source": int8_source,
        "export.int8_input": int8_input,
        "export.calibration_images": calibration_images,
        "export.max_drop": max_drop,
    }
    result = export_run(run_dir, int8=int8, overrides=overrides, option_names=OPTIONS, console=console)
    console.print(f"[bold green]done[/]: {len(result.artifacts)} artifact(s) indexed in {result.index}")
    if bundle is not None:
        from edgeclf.export.bundle import write_bundle

        console.print(f"bundle for the device: {write_bundle(result.index.parent, bundle)}")
