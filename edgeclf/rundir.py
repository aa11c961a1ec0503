"""Run directories and atomic writes: nothing is ever half-written.

A new run is built in a hidden staging folder beside --out and renamed into place only when it is
complete; a run that fails leaves nothing behind. Single files written into an existing run go to a
temporary name first and are renamed over the target.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgeclf.errors import RunDirError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def check_out_dir(out: Path, overwrite: bool, option: str = "--out") -> None:
    """Refuse an --out that is a file, or a folder that already holds something, unless overwriting."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{option} {out}: is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunDirError(
            f"{option} {out}: already holds a run; pass --overwrite to replace it, or choose another folder"
        )


class StagedRun:
    """with StagedRun(out, overwrite) as stage: write into stage.path; renamed to out on success."""

    def __init__(self, out: Path, overwrite: bool):
        check_out_dir(out, overwrite)
        self.out = Path(out)
        self.overwrite = overwrite
        self.path = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"

    def __enter__(self) -> StagedRun:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
        os.replace(self.path, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
