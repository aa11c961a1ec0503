"""Writing files and folders so that nothing is ever half-written.

A file is written under a temporary name beside its target (same folder, same suffix, so that
writers which look at the suffix still work) and renamed over the target only when complete; a
folder is built under a hidden temporary name and renamed into place when complete. A failure
leaves the old target as it was and no temporary behind. A process killed outright (kill -9,
power loss) leaves its temporaries; they carry its PID, and the next writer of the same target
removes those whose process is gone (restoring a previous folder that was moved aside but not yet
replaced), and refuses to run beside a live one. TensorFlow-free.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeclf.core.errors import EdgeclfError, RunDirError

log = logging.getLogger(__name__)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers (a reused PID) are stale too
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clear_stale(target: Path, patterns: tuple[str, ...], keep: Path | None = None) -> None:
    """Remove the temporaries of `target` (names matching `patterns`, each with a (?P<pid>) group)
    left by processes that no longer run; a moved-aside old folder comes back when the target is
    missing. Raises EdgeclfError when a live process owns one (two writers of one target)."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    for sibling in sorted(target.parent.iterdir()):
        match = next((m for p in patterns if (m := re.fullmatch(p, sibling.name))), None)
        if match is None or sibling == keep:
            continue
        pid = int(match["pid"])
        if process_alive(pid):
            raise EdgeclfError(
                f"{target}: another process (pid {pid}) is writing it ({sibling.name}); "
                "wait for it to finish or stop it"
            )
        if sibling.name.startswith(f".{target.name}.old-") and not target.exists():
            os.replace(sibling, target)
            log.warning(f"{target}: restored from {sibling.name}, left by a process killed while replacing it")
        elif sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)
            log.warning(f"removed {sibling}: a staging folder left by a killed process (pid {pid})")
        else:
            sibling.unlink(missing_ok=True)
            log.warning(f"removed {sibling}: a temporary file left by a killed process (pid {pid})")


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: without it a power loss can forget the new name even though
    the file's bytes were synced (POSIX). A no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Sync every file and folder under `folder` (a staging folder about to be renamed into place)."""
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            file = Path(dirpath) / name
            if file.is_file() and not file.is_symlink():
                with open(file, "rb") as f:
                    os.fsync(f.fileno())
        fsync_dir(Path(dirpath))


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """with replacing(target) as tmp: write tmp (any writer); on leaving the block without an
    exception tmp is synced and renamed over target; with one, tmp is removed and target untouched."""
    path = Path(path)
    clear_stale(path, (rf"\.{re.escape(path.stem)}\.tmp-(?P<pid>\d+){re.escape(path.suffix)}",))
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the new name survives a power loss too
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


class StagedDirectory:
    """with StagedDirectory(out) as stage: write into stage.path; renamed to out (replacing what
    was there) on success, removed on failure. With resume_marker, a stage holding that file is
    kept when the work is interrupted (Ctrl-C, or a failed resume), and adopt=True takes over the
    staging folder a killed or interrupted process left instead of starting empty."""

    def __init__(self, out: Path, resume_marker: str | None = None, adopt: bool = False, shared: bool = False):
        self.out = Path(out)
        # shared: one name that every process can compute (a multi-worker cluster's workers read its state)
        tag = "cluster" if shared else str(os.getpid())
        self.path = self.out.parent / f".{self.out.name}.partial-{tag}"
        self.resume_marker, self.adopt, self.shared = resume_marker, adopt, shared

    def __enter__(self) -> StagedDirectory:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        name = re.escape(self.out.name)
        if self.adopt and self.shared:
            if not (self.path / str(self.resume_marker)).is_file():
                raise EdgeclfError(f"--resume: no interrupted cluster run of {self.out} ({self.path} is missing)")
        elif self.adopt:
            self._adopt(rf"\.{name}\.partial-(?P<pid>\d+)")
        patterns = (rf"\.{name}\.partial-(?P<pid>\d+)", rf"\.{name}\.old-(?P<pid>\d+)")
        clear_stale(self.out, patterns, keep=self.path if self.adopt else None)
        if not self.adopt:  # a shared stage left by an earlier cluster run is started afresh too
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir()
        return self

    def _adopt(self, pattern: str) -> None:
        """Take over the newest staging folder of out whose process is gone and which holds the marker."""
        found = [
            p
            for p in self.out.parent.iterdir()
            if (m := re.fullmatch(pattern, p.name))
            and not process_alive(int(m["pid"]))
            and (p / self.resume_marker).is_file()
        ]
        if not found:
            raise EdgeclfError(
                f"--resume: no interrupted run of {self.out} to continue (a killed edgeclf train leaves "
                f".{self.out.name}.partial-PID beside it); run without --resume"
            )
        os.replace(max(found, key=lambda p: (p / self.resume_marker).stat().st_mtime), self.path)

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            resumable = self.resume_marker and (self.path / self.resume_marker).is_file()
            if resumable and (self.adopt or issubclass(exc_type, KeyboardInterrupt)):
                log.warning(f"{self.out}: interrupted; the same edgeclf train command with --resume continues it")
                return
            shutil.rmtree(self.path, ignore_errors=True)
            return
        fsync_tree(self.path)  # the contents are on disk before the folder takes its name
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
        os.replace(self.path, self.out)
        fsync_dir(self.out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def check_out_dir(out: Path, overwrite: bool, option: str = "--out") -> None:
    """Refuse an --out that is a file, or a folder that already holds something, unless overwriting."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{option} {out}: is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunDirError(
            f"{option} {out}: already holds a run; pass --overwrite to replace it, or choose another folder"
        )


def check_apart(data_dir: Path, out: Path) -> None:
    """Refuse an --out inside the data folder (its files would be read as data next time) or a data
    folder inside --out (overwriting the run would delete the data)."""
    data, run = Path(data_dir).resolve(), Path(out).resolve()
    if run == data or data in run.parents:
        raise RunDirError(
            f"--out {out}: inside the data folder {data_dir}; the run's files would be read as data. "
            "Choose a folder outside it"
        )
    if run in data.parents:
        raise RunDirError(
            f"--out {out}: holds the data folder {data_dir}; choose a folder that does not contain the data"
        )
