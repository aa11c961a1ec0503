"""`edgeclf unpack`: open a bundle on the device, checked before and after extraction."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeclf.cli._common import done, user_errors

HELP = (
    "Unpack a bundle from edgeclf export --bundle into a new folder: refuses links, devices, absolute or '..' "
    "names and oversized archives before writing anything, then checks the runner wheel and every artifact "
    "against their recorded sha256."
)
EXAMPLE = "Example: edgeclf unpack model-v2.tar.gz /opt/models/v2 && edgeclf verify /opt/models/v2/export"


@user_errors
def command(
    bundle: Path = typer.Argument(..., help="The .tar.gz bundle."),
    dest: Path = typer.Argument(..., help="A new (or empty) folder to unpack into."),
) -> None:
    from edgeclf.device.unpack import unpack

    result = unpack(bundle, dest)
    done(
        f": {result.files} files ({result.bytes / 2**20:.1f} MiB), artifacts {', '.join(result.artifacts)}; "
        f"export folder {result.export}"
    )
