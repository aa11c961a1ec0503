"""`edgeclf verify`: does this machine reproduce the exporting machine's outputs? (no TensorFlow needed)"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from edgeclf.cli._common import err_console, overrides, setting, user_errors

HELP = (
    "Re-run every artifact of an export folder (or an unpacked bundle) on the sample images the export "
    "recorded, and compare with the exporting machine's outputs: fp32 within tolerance; int8 TFLite "
    "bit-identical on the reference kernels and within the exporter's own kernel spread on the fast ones. "
    "Exits 1 when any artifact fails."
)
EXAMPLE = "Example: edgeclf verify ~/edgeclf/export"


@user_errors
def command(
    export_dir: Path = typer.Argument(..., help="Export folder with artifacts.json and parity/ (or a run directory)."),
    artifact: list[str] | None = typer.Option(None, help="Check only this artifact (repeatable)."),
    threads: int | None = setting("verify.threads", "Inference threads (0: every core; default 1, as recorded)."),
    as_json: bool = typer.Option(False, "--json", help="The verdicts as JSON."),
) -> None:
    from edgeclf.core.config import load_config
    from edgeclf.runtime.parity import verify

    values, names = overrides(command, locals())
    result = verify(export_dir, artifact, load_config([], values, names).verify.threads)
    if as_json:
        print(
            json.dumps(
                {
                    "passed": result.passed,
                    "samples": result.samples,
                    "checks": [asdict(c) for c in result.checks],
                    "reference_machine": result.reference_machine,
                    "machine": result.machine,
                },
                indent=2,
            )
        )
    else:
        from edgeclf.cli import render

        render.verify_lines(result)
    if not result.passed:
        failed = [c.artifact for c in result.checks if not c.passed]
        err_console.print(f"[bold red]error:[/] verification failed for {', '.join(failed)}")
        raise typer.Exit(1)
