"""`edgeclf unpack BUNDLE DIR`: open a bundle from `edgeclf export --bundle` on the device, safely.

A bundle is untrusted input like any other file that arrives. Before anything is written: only
regular files and folders (no links, devices or FIFOs), relative names without `..`, at most
MAX_MEMBERS entries and MAX_BYTES in all (from the tar headers, so a decompression bomb stops at
its first oversized header). Then it is extracted with tarfile's "data" filter into a staging
folder, checked (the runner wheel against bundle.json's sha256, every artifact against
artifacts.json's size and sha256) and only then renamed to DIR. TensorFlow-free.

The first install has no edgeclf yet to unpack with: `python3 -c "import tarfile;
tarfile.open('bundle.tar.gz').extractall('DIR', filter='data')"` (Python 3.11.4+) applies the same
tarfile filter (it refuses absolute names, `..`, links leaving DIR and devices); install.sh then
checks the wheel and `edgeclf verify` the artifacts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from edgeclf.atomic import StagedDirectory
from edgeclf.errors import EdgeclfError
from edgeclf.runtime.artifact import artifact_file, read_artifacts
from edgeclf.runtime.integrity import check_recorded

MAX_MEMBERS = 10_000
MAX_BYTES = 4 * 1024**3


@dataclass
class UnpackResult:
    folder: Path
    export: Path  # the export folder inside it (what predict, serve, verify take)
    artifacts: list[str]
    files: int
    bytes: int


def unpack(bundle: Path, dest: Path) -> UnpackResult:
    """Check, extract and verify `bundle` into `dest` (which must not exist or be empty). Raises
    EdgeclfError naming the bundle and the offending entry; on any error nothing is left at dest."""
    bundle, dest = Path(bundle), Path(dest)
    if not bundle.is_file():
        raise EdgeclfError(f"{bundle}: no such file")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise EdgeclfError(f"{dest}: exists and is not an empty folder; choose a new folder to unpack into")
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            members, total = _checked_members(bundle, tar)
            with StagedDirectory(dest) as stage:
                tar.extractall(stage.path, members=members, filter="data")
                names = _verify(bundle, stage.path)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise EdgeclfError(f"{bundle}: not a readable .tar.gz bundle ({' '.join(str(exc).split())[:120]})") from None
    return UnpackResult(dest, dest / "export", names, sum(m.isfile() for m in members), total)


def _checked_members(bundle: Path, tar: tarfile.TarFile) -> tuple[list[tarfile.TarInfo], int]:
    members, total = [], 0
    for member in tar:
        if len(members) >= MAX_MEMBERS:
            raise EdgeclfError(f"{bundle}: more than {MAX_MEMBERS} entries; not an edgeclf bundle")
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not member.name or "\\" in member.name:
            raise EdgeclfError(f"{bundle}: entry {member.name!r} has an absolute or parent-relative name: refused")
        if not (member.isfile() or member.isdir()):
            kind = "a link" if member.issym() or member.islnk() else "a device or special file"
            raise EdgeclfError(f"{bundle}: entry {member.name!r} is {kind}: bundles hold regular files only")
        total += member.size
        if total > MAX_BYTES:
            raise EdgeclfError(f"{bundle}: over {MAX_BYTES // 1024**3} GiB unpacked; not an edgeclf bundle")
        members.append(member)
    return members, total


def _verify(bundle: Path, folder: Path) -> list[str]:
    """The runner wheel matches bundle.json; every artifact matches artifacts.json. Returns the names."""
    manifest_path = folder / "bundle.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        runner = manifest["runner"]
        wheel = folder / "runner" / PurePosixPath(str(runner["file"])).name
        digest = str(runner["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise EdgeclfError(f"{bundle}: no usable bundle.json; not an edgeclf bundle") from None
    if not wheel.is_file() or hashlib.sha256(wheel.read_bytes()).hexdigest() != digest:
        raise EdgeclfError(f"{bundle}: the runner wheel does not match bundle.json's sha256; re-copy the bundle")
    index = folder / "export" / "artifacts.json"
    if not index.is_file():
        raise EdgeclfError(f"{bundle}: no export/artifacts.json; not an edgeclf bundle")
    entries = [a for a in read_artifacts(index) if a.status == "ok"]
    for entry in entries:
        file = artifact_file(index, entry)
        if not file.is_file():
            raise EdgeclfError(f"{bundle}: {file.name} is listed in artifacts.json but missing")
        check_recorded(file, entry.bytes, entry.sha256, index)
    return [a.name for a in entries]
