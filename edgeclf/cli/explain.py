"""`edgeclf explain`: where the float model looks (Grad-CAM) for images of your choice."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import console, done, overrides, setting, user_errors

HELP = (
    "Draw where the run's float model looks for its answer (Grad-CAM over the backbone's last feature map) on "
    "each image, as OUT/<image>_gradcam.png, and print the answer. The report's galleries show the same maps."
)
EXAMPLE = "Example: edgeclf explain runs/demo photo1.jpg photo2.png --out explained/"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory made by edgeclf train."),
    images: list[Path] = typer.Argument(..., help="Image files."),
    out: Path = typer.Option(..., help="Folder for the overlays."),
    size: int | None = setting("report.explain_px", "Side of each overlay in pixels."),
) -> None:
    from edgeclf.core.run_directory import Run
    from edgeclf.measure.explain import explain_files

    values, names = overrides(command, locals())
    side = Run.open(run_dir).config(values, names).report.explain_px
    for image, label, probability, written in explain_files(run_dir, images, out, side):
        console.print(f"{image}: {label} ({probability:.2f}) -> {written}", markup=False, highlight=False)
    done(f": {len(images)} overlay(s) in {out}")
