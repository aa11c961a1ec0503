"""Pack what a device needs: the export folder's artifacts.json and the files it lists."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from edgeclf.rundir import atomic_write_bytes
from edgeclf.runtime.artifact import artifact_file, locate_artifacts, read_artifacts


def write_bundle(export_dir: Path, out: Path) -> Path:
    """out (.tar.gz) holding export/artifacts.json and every validated artifact file; unpack it
    anywhere and point `edgeclf predict` or `edgeclf bench` at the export/ folder."""
    index = locate_artifacts(export_dir)
    entries = [a for a in read_artifacts(index) if a.status == "ok"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(index, arcname="export/artifacts.json")
        for info in entries:
            path = artifact_file(index, info)
            tar.add(path, arcname=f"export/{path.name}")
    return atomic_write_bytes(Path(out), buf.getvalue())
