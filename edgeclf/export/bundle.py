"""Pack what a device needs into one .tar.gz:

bundle.json          what the bundle holds: edgeclf version, source commit, the runner wheel's sha256
install.sh           installs the runner wheel into a venv, then runs edgeclf verify on export/
runner/edgeclf-*.whl the runner, built from this very source tree (pure Python: one wheel, every board)
export/              artifacts.json, the validated artifact files and parity/ (edgeclf verify's samples)
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import edgeclf
from edgeclf import __version__
from edgeclf.core.atomic import atomic_write_bytes
from edgeclf.core.errors import EdgeclfError
from edgeclf.export.model_card import MODEL_CARD
from edgeclf.runtime.artifact import artifact_file, locate_artifacts, read_artifacts
from edgeclf.runtime.parity import PARITY_DIR

INSTALL_SCRIPT = Path(edgeclf.__file__).parent / "deploy" / "install.sh"


def source_tree() -> Path:
    """The edgeclf source checkout this package runs from (an editable install)."""
    root = Path(edgeclf.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file() or 'name = "edgeclf"' not in (root / "pyproject.toml").read_text():
        raise EdgeclfError(
            "--bundle builds the runner wheel from the edgeclf source tree, and this edgeclf is not "
            "installed from one; install it with pip install -e '.[train]' from a checkout"
        )
    return root


def source_commit(root: Path) -> dict:
    """{"commit": the checkout's HEAD or None, "dirty": uncommitted changes under edgeclf/ or pyproject.toml}."""

    def git(*args) -> str | None:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", "edgeclf", "pyproject.toml")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def build_runner_wheel(dest: Path) -> Path:
    """Build edgeclf's wheel from the source tree into dest (offline: no build isolation)."""
    root = source_tree()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(dest),
            str(root),
        ],
        capture_output=True,
        text=True,
    )
    wheels = sorted(Path(dest).glob(f"edgeclf-{__version__}-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])[:300]
        raise EdgeclfError(f"--bundle: building the runner wheel from {root} failed: {tail}")
    return wheels[0]


def write_bundle(export_dir: Path, out: Path) -> Path:
    """Write out (.tar.gz, as described above) for the validated artifacts of export_dir; unpack it
    anywhere on the device and run install.sh. Returns out. Raises EdgeclfError when the export has
    no parity data or the runner wheel cannot be built."""
    index = locate_artifacts(export_dir)
    entries = [a for a in read_artifacts(index) if a.status == "ok"]
    parity = index.parent / PARITY_DIR
    if not (parity / "reference.json").is_file():
        raise EdgeclfError(f"{parity}: no parity outputs (edgeclf verify needs them); re-run edgeclf export")
    links = [p for p in [index, *(artifact_file(index, a) for a in entries), *parity.rglob("*")] if p.is_symlink()]
    if links:  # a bundle carries regular files only: a link could point anywhere on the device
        raise EdgeclfError(f"{links[0]}: a link; a bundle holds regular files only (copy the file in its place)")
    with tempfile.TemporaryDirectory(prefix="edgeclf-wheel-") as tmp:
        wheel = build_runner_wheel(Path(tmp))
        content = wheel.read_bytes()
        manifest = {
            "edgeclf_version": __version__,
            **source_commit(source_tree()),
            "runner": {"file": f"runner/{wheel.name}", "sha256": hashlib.sha256(content).hexdigest()},
            "artifacts": [a.name for a in entries],
        }
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            _add_bytes(tar, "bundle.json", (json.dumps(manifest, indent=2) + "\n").encode())
            _add_bytes(tar, "install.sh", INSTALL_SCRIPT.read_bytes(), mode=0o755)
            _add_bytes(tar, f"runner/{wheel.name}", content)
            # the index of what the bundle holds: failed artifacts (whose files are not in it) left out
            listed = json.loads(index.read_text(encoding="utf-8"))
            listed["artifacts"] = [a for a in listed.get("artifacts", []) if a.get("status") == "ok"]
            _add_bytes(tar, "export/artifacts.json", (json.dumps(listed, indent=2) + "\n").encode())
            for path in dict.fromkeys(artifact_file(index, info) for info in entries):  # one file, several engines
                tar.add(path, arcname=f"export/{path.name}")
            tar.add(parity, arcname=f"export/{PARITY_DIR}")
            if (index.parent / MODEL_CARD).is_file():
                tar.add(index.parent / MODEL_CARD, arcname=f"export/{MODEL_CARD}")
    return atomic_write_bytes(Path(out), buf.getvalue())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mode = len(data), mode
    tar.addfile(member, io.BytesIO(data))
