"""`edgeclf export`: TFLite and ONNX artifacts, each validated against its source model."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import comma_list, console, done, overrides, setting, user_errors, verbose_stages

HELP = (
    "Export a run to TFLite and ONNX (float32, float16; with --int8 also full-integer int8), validate each "
    "artifact on the validation split, and index them in RUN_DIR/export/artifacts.json."
)
EXAMPLE = "Example: edgeclf export runs/demo --int8 --max-drop 1.0"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory made by edgeclf train (and optionally edgeclf qat)."),
    int8: bool = typer.Option(False, "--int8", help="Also write full-integer int8 artifacts."),
    formats: str | None = setting("export.formats", "Comma-separated: tflite,onnx.", convert=comma_list),
    float16: bool | None = setting("export.float16", "Also write a float16 TFLite.", "--float16/--no-float16"),
    dynamic: bool | None = setting("export.dynamic", "Also write a dynamic-range TFLite.", "--dynamic"),
    int8_source: str | None = setting("export.int8_source", "auto | qat | ptq | both (TFLite int8)."),
    int8_input: str | None = setting("export.int8_input", "uint8 | int8 image input of the int8 TFLite."),
    calibration_images: int | None = setting(
        "export.calibration_images", "Class-balanced training images for calibration."
    ),
    max_drop: float | None = setting(
        "export.max_drop", "Fail when int8 validation accuracy drops more than this many points."
    ),
    repair: bool | None = setting(
        "export.repair",
        "Repair an int8 file that fails its gate: keep its worst layers in float (an *-int8-ptq-mixed artifact).",
        "--repair/--no-repair",
    ),
    bundle: Path | None = typer.Option(
        None,
        help="Also pack artifacts.json and the validated files into this .tar.gz for a device; an export that "
        "is current (same models, settings and files) is packed without converting again.",
    ),
) -> None:
    from edgeclf.cli import render
    from edgeclf.core.run_directory import Run
    from edgeclf.export.current import stale_reason
    from edgeclf.export.stage import export_run

    values, names = overrides(command, locals())
    if bundle is not None:  # a bundle packs the export: converted again only when it is not current
        run = Run.open(run_dir)
        reason = stale_reason(run, run.config(values, names), int8)
        if reason is None:
            console.print("the export is current (same models, settings and files): packing it", markup=False)
            _bundle(run.export_dir, bundle)
            return
        console.print(f"exporting first: {reason}", markup=False)
    with render.verdicts_on_failure():
        result = export_run(run_dir, int8=int8, overrides=values, option_names=names)
    render.export_table(result)
    if verbose_stages[0]:
        render.timings_table("export", result.timings)
    done(f": {len(result.artifacts)} artifact(s) indexed in {result.index}")
    if bundle is not None:
        _bundle(result.index.parent, bundle)


def _bundle(export_dir: Path, bundle: Path) -> None:
    from edgeclf.export.bundle import write_bundle

    console.print(f"bundle for the device: {write_bundle(export_dir, bundle)}", markup=False)
