"""`edgeclf unpack BUNDLE DIR`: open a bundle from `edgeclf export --bundle` on the device, safely.

A bundle is untrusted input like any other file that arrives. Before anything is written, from
the tar headers and the two small manifests (bundle.json, export/artifacts.json, read through
edgeclf.core.bounded):
- only regular files and folders (no links, devices or FIFOs), relative names without `..`, each
  part at most 255 bytes, no file where another entry needs a folder (a name given twice: the
  last one, as tar does, and checked like the rest);
- at most MAX_MEMBERS entries and MAX_BYTES in all (a decompression bomb stops at its first
  oversized header), and no more than the destination's free space;
- only the files a bundle holds: bundle.json, install.sh, the one runner wheel bundle.json names
  (at most MAX_WHEEL_BYTES), artifacts.json, each artifact file it lists with the size it records,
  and parity/ (at most MAX_PARITY_BYTES).
Then it is extracted with tarfile's "data" filter into a staging folder, checked (the runner wheel
against bundle.json's sha256, every artifact against artifacts.json's size and sha256, hashed in
pieces) and only then renamed to DIR. TensorFlow-free.

The first install has no edgeclf yet to unpack with: `python3 -c "import tarfile;
tarfile.open('bundle.tar.gz').extractall('DIR', filter='data')"` (Python 3.11.4+) applies the same
tarfile filter (it refuses absolute names, `..`, links leaving DIR and devices); install.sh then
checks the wheel and `edgeclf verify` the artifacts.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from edgeclf.core.atomic import StagedDirectory
from edgeclf.core.bounded import BoundedReadError, excerpt, expect_object, loads_json
from edgeclf.core.errors import BundleError, EdgeclfError
from edgeclf.runtime.artifact import artifact_file, read_artifacts
from edgeclf.runtime.integrity import check_recorded, file_sha256

PARITY_DIR = "parity"  # edgeclf.runtime.parity.PARITY_DIR (not imported: parity reaches the engines)

MAX_MEMBERS = 10_000
MAX_CARD_BYTES = 2**20  # export/MODEL_CARD.md
MAX_BYTES = 4 * 1024**3
MAX_WHEEL_BYTES = 64 * 1024**2  # the runner is pure Python: a few hundred KiB
MAX_PARITY_BYTES = 256 * 1024**2  # reference.json and a few sample images
MAX_MANIFEST_BYTES = 8 * 1024**2
MAX_NAME_PART = 255  # bytes: what a filesystem takes for one name


@dataclass
class UnpackResult:
    folder: Path
    export: Path  # the export folder inside it (what predict, serve, verify take)
    artifacts: list[str]
    files: int
    bytes: int


def unpack(bundle: Path, dest: Path) -> UnpackResult:
    """Check, extract and verify `bundle` into `dest` (which must not exist or be empty). Raises
    BundleError naming the bundle and the offending entry (EdgeclfError for a missing bundle or
    a used destination; IntegrityError, MalformedIndexError from the checks); on any error nothing is left at dest."""
    bundle, dest = Path(bundle), Path(dest)
    if not bundle.is_file():
        raise EdgeclfError(f"{bundle}: no such file")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise EdgeclfError(f"{dest}: exists and is not an empty folder; choose a new folder to unpack into")
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            members, total = _checked_members(bundle, tar)
            runner, digest = _check_layout(bundle, tar, members)
            parent = dest.resolve().parent
            free = shutil.disk_usage(parent if parent.exists() else Path.cwd()).free
            if total > free:
                raise BundleError(f"{bundle}: {total} bytes unpacked, {free} free at {parent}; free some space")
            with StagedDirectory(dest) as stage:
                try:
                    tar.extractall(stage.path, members=members, filter="data")
                except OSError as exc:
                    raise BundleError(f"{bundle}: cannot write {exc.filename or 'an entry'}: {exc.strerror}") from None
                names = _verify(bundle, stage.path, runner, digest)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(f"{bundle}: not a readable .tar.gz bundle ({' '.join(str(exc).split())[:120]})") from None
    return UnpackResult(dest, dest / "export", names, sum(m.isfile() for m in members), total)


def _checked_members(bundle: Path, tar: tarfile.TarFile) -> tuple[list[tarfile.TarInfo], int]:
    members, total, files, folders = [], 0, set(), set()
    for member in tar:
        if len(members) >= MAX_MEMBERS:
            raise BundleError(f"{bundle}: more than {MAX_MEMBERS} entries; not an edgeclf bundle")
        name = PurePosixPath(member.name)
        shown = excerpt(member.name)
        if name.is_absolute() or ".." in name.parts or not member.name or "\\" in member.name:
            raise BundleError(f"{bundle}: entry {shown} has an absolute or parent-relative name: refused")
        if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_PART for part in name.parts):
            raise BundleError(f"{bundle}: entry {shown} has a name part over {MAX_NAME_PART} bytes: refused")
        key = name.as_posix()
        parents = {p.as_posix() for p in name.parents if p.as_posix() != "."}
        if (member.isfile() and key in folders) or (not member.isfile() and key in files) or parents & files:
            raise BundleError(f"{bundle}: entry {shown} conflicts with another entry of that name: refused")
        (files if member.isfile() else folders).add(key)
        folders |= parents
        if not (member.isfile() or member.isdir()):
            kind = "a link" if member.issym() or member.islnk() else "a device or special file"
            raise BundleError(f"{bundle}: entry {shown} is {kind}: bundles hold regular files only")
        total += member.size
        if total > MAX_BYTES:
            raise BundleError(f"{bundle}: over {MAX_BYTES // 1024**3} GiB unpacked; not an edgeclf bundle")
        members.append(member)
    return members, total


def _manifest(bundle: Path, tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> dict:
    member = members.get(name)
    if member is None or not member.isfile():
        raise BundleError(f"{bundle}: no {name}; not an edgeclf bundle")
    if member.size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{bundle}: {name} is {member.size} bytes, over {MAX_MANIFEST_BYTES}; not an edgeclf bundle")
    with tar.extractfile(member) as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    try:
        return expect_object(loads_json(data, f"{bundle}: {name}", MAX_MANIFEST_BYTES), f"{bundle}: {name}")
    except BoundedReadError as exc:
        raise BundleError(f"{exc}; not an edgeclf bundle") from None


def _check_layout(bundle: Path, tar: tarfile.TarFile, members: list[tarfile.TarInfo]) -> tuple[PurePosixPath, str]:
    """Every file is one a bundle holds, with the size its manifests give, before a byte is written.
    Returns bundle.json's runner wheel (its name in the bundle, its sha256), read once here."""
    by_name = {PurePosixPath(m.name).as_posix(): m for m in members}
    manifest = _manifest(bundle, tar, by_name, "bundle.json")
    try:
        runner = PurePosixPath(str(manifest["runner"]["file"]))
        digest = str(manifest["runner"]["sha256"])
    except (KeyError, TypeError):
        raise BundleError(f"{bundle}: no usable bundle.json; not an edgeclf bundle") from None
    if runner.parent.as_posix() != "runner" or runner.suffix != ".whl":
        raise BundleError(f"{bundle}: bundle.json names the runner {excerpt(str(runner))}; not an edgeclf bundle")
    sizes = _recorded_sizes(_manifest(bundle, tar, by_name, "export/artifacts.json"))
    parity = 0
    for key, member in by_name.items():
        if member.isfile():
            parity += _check_member(bundle, key, member, runner, sizes)
            if parity > MAX_PARITY_BYTES:
                raise BundleError(f"{bundle}: export/{PARITY_DIR}/ over {MAX_PARITY_BYTES // 2**20} MiB; refused")
    return runner, digest


def _recorded_sizes(index: dict) -> dict[str, object]:
    """{export/FILE: the bytes artifacts.json records} for its validated entries (as given: checked
    against each member's size, which a hostile value never equals)."""
    listed = index.get("artifacts") if isinstance(index.get("artifacts"), list) else []
    return {
        f"export/{PurePosixPath(str(entry.get('path', ''))).name}": entry.get("bytes")
        for entry in listed
        if isinstance(entry, dict) and entry.get("status") == "ok"
    }


def _check_member(bundle: Path, key: str, member: tarfile.TarInfo, runner: PurePosixPath, sizes: dict) -> int:
    """One file of the archive is one a bundle holds, at its recorded size; returns its bytes when
    it belongs to the parity set (bounded in all by the caller), else 0."""
    if key.startswith(f"export/{PARITY_DIR}/"):
        return member.size
    if key == runner.as_posix():
        if member.size > MAX_WHEEL_BYTES:
            raise BundleError(f"{bundle}: the runner wheel is {member.size} bytes, over {MAX_WHEEL_BYTES}")
    elif key in sizes:
        if member.size != sizes[key]:
            raise BundleError(
                f"{bundle}: {key} is {member.size} bytes, artifacts.json records {excerpt(sizes[key])}; refused"
            )
    elif key == "export/MODEL_CARD.md":  # the model card (edgeclf.export.model_card), text
        if member.size > MAX_CARD_BYTES:
            raise BundleError(f"{bundle}: {key} is {member.size} bytes, over {MAX_CARD_BYTES}; refused")
    elif key not in ("bundle.json", "install.sh", "export/artifacts.json"):
        raise BundleError(f"{bundle}: entry {excerpt(key)} is not part of an edgeclf bundle; refused")
    return 0


def _verify(bundle: Path, folder: Path, runner: PurePosixPath, digest: str) -> list[str]:
    """The extracted runner wheel has bundle.json's sha256; every artifact matches artifacts.json.
    Returns the artifacts' names."""
    wheel = folder / runner
    if not wheel.is_file() or file_sha256(wheel) != digest:
        raise BundleError(f"{bundle}: the runner wheel does not match bundle.json's sha256; re-copy the bundle")
    index = folder / "export" / "artifacts.json"
    if not index.is_file():
        raise BundleError(f"{bundle}: no export/artifacts.json; not an edgeclf bundle")
    entries = [a for a in read_artifacts(index) if a.status == "ok"]
    for entry in entries:
        file = artifact_file(index, entry)
        if not file.is_file():
            raise BundleError(f"{bundle}: {file.name} is listed in artifacts.json but missing")
        check_recorded(file, entry.bytes, entry.sha256, index)
    return [a.name for a in entries]
