"""`edgeclf validate`: validate a run's exported artifacts again, as they are on disk now."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import done, overrides, setting, user_errors

HELP = (
    "Validate the artifacts in RUN_DIR/export again against the run's float Keras model on the validation "
    "split (after copying or editing a file, or to try another --max-drop): reads each file's size, sha256 and "
    "I/O from the file itself, records the new verdicts in artifacts.json and the parity samples again. "
    "Exits 2 when any artifact fails."
)
EXAMPLE = "Example: edgeclf validate runs/demo --artifact tflite-int8-qat --max-drop 0.5"


@user_errors
def command(
    run_dir: Path = typer.Argument(..., help="Run directory with an export."),
    artifact: list[str] | None = typer.Option(None, help="Validate only this artifact (repeatable)."),
    max_drop: float | None = setting(
        "export.max_drop", "Fail when int8 validation accuracy drops more than this many points."
    ),
) -> None:
    from edgeclf.cli import render
    from edgeclf.export.stage import revalidate_run

    values, names = overrides(command, locals())
    with render.verdicts_on_failure():
        result = revalidate_run(run_dir, artifact, overrides=values, option_names=names)
    render.export_table(result)
    done(f": {len(result.artifacts)} artifact(s) validated; {result.index} updated")
