"""`edgeclf explain`: where the float model looks (Grad-CAM) for images of your choice."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import console, done, user_errors

HELP = (
    "Draw where the run's float model looks for its answer (Grad-CAM over the backbone's last feature map) on "
    "each image, as OUT/<image>_gradcam.png, and print the answer. The report's galleries show the same maps."
)
EXAMPLE = "Example: edgeclf explain runs/demo photo1.jpg photo2.png --out explained/"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory made by edgeclf train."),
    images: list[Path] = typer.Argument(..., help="Image files."),
    out: Path = typer.Option(Path("explained"), help="Folder for the overlays."),
    size: int = typer.Option(224, min=32, max=1024, help="Side of each overlay in pixels."),
) -> None:
    from edgeclf.measure.explain import explain_files

    for image, label, probability, written in explain_files(run_dir, images, out, size):
        console.print(f"{image}: {label} ({probability:.2f}) -> {written}", markup=False, highlight=False)
    done(f": {len(images)} overlay(s) in {out}")
