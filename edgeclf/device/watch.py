"""`edgeclf watch`: the long-running device mode. Classifies every new image that appears in a
folder (or frames from a camera, when OpenCV is installed), printing label, probability and
latency per image, until SIGINT or SIGTERM. TensorFlow-free.

Folder mode polls (no file-watching library: polling works on every filesystem, network ones
included). What it promises:
- a file is read only once its size and modification time have not changed for `settle` seconds;
- a file that vanishes before it is read, cannot be read (retried RETRIES times, one scan apart),
  is not a usable image, is a link or is too large gets a record {"image", "error"}, never a crash;
- each content is reported once: the sha256 of every file classified is kept in a state file
  (FOLDER/.edgeclf-watch.json by default, written atomically, the newest MAX_STATE kept), so the
  same bytes under another name, or after a restart with --existing, are not reported again
  (unless `reprocess`); a file whose content changes is read again;
- the watched folder disappearing ends the watch with a clear error (exit 2), for a supervisor
  (systemd's Restart=) to act on, rather than waiting silently.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.atomic import atomic_write_json
from edgeclf.core.bounded import BoundedReadError, expect_object, read_json
from edgeclf.core.config import WatchConfig
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.images import EXTENSIONS, ImageError, resize, to_rgb8
from edgeclf.device.signals import StopSignal
from edgeclf.runtime.answers import decode_timed, top1
from edgeclf.runtime.classifier import Classifier

STATE_FILE = ".edgeclf-watch.json"
MAX_STATE = 10_000  # contents remembered
MAX_STATE_BYTES = 4 * MAX_STATE * 200  # a state file of MAX_STATE entries is under half of this
MAX_FILE_BYTES = 64 * 1024 * 1024  # larger files get an error record, unread
RETRIES = 3  # reads of a file that cannot be read yet, one scan apart

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    signature: tuple[int, int]  # (size, mtime_ns)
    stable_since: float
    failures: int = 0


class _Seen:
    """The sha256 of every content classified, newest last, kept in a JSON file. A state file that
    cannot be used (any content, any depth, a folder, in a missing folder, unwritable) never stops
    the watch: it starts fresh, or goes on in memory, with a warning."""

    def __init__(self, path: Path):
        self.path = path
        self.digests: OrderedDict[str, str] = OrderedDict()
        self.saving = True
        if path.is_dir() or not path.parent.is_dir():
            why = "is a folder" if path.is_dir() else "is in a folder that does not exist"
            log.warning(f"state file {path} {why}: what is reported is remembered until watch stops (--state FILE)")
            self.saving = False
        elif path.exists():
            try:
                data = expect_object(read_json(path, MAX_STATE_BYTES), str(path))
                done = data.get("done", {})
                for digest, name in list(done.items() if isinstance(done, dict) else [])[-MAX_STATE:]:
                    if isinstance(digest, str) and len(digest) == 64:
                        self.digests[digest] = str(name)[:255]
            except BoundedReadError as exc:
                log.warning(f"{exc}: starting a fresh state file")

    def __contains__(self, digest: str) -> bool:
        return digest in self.digests

    def add(self, digest: str, name: str) -> None:
        self.digests[digest] = name
        while len(self.digests) > MAX_STATE:
            self.digests.popitem(last=False)
        if not self.saving:
            return
        try:
            atomic_write_json(self.path, {"version": 1, "done": dict(self.digests)})
        except OSError as exc:
            log.warning(f"state file {self.path}: cannot be written ({exc.strerror}); remembered until watch stops")
            self.saving = False


def _listing(folder: Path) -> dict[Path, tuple[int, int] | str]:
    """Candidate image files directly in folder: path -> (size, mtime_ns), or the reason it is
    refused (a link, not a regular file). Hidden files and other extensions are left alone.
    Raises FileNotFoundError when the folder itself is gone."""
    found: dict[Path, tuple[int, int] | str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in EXTENSIONS:
                continue
            try:
                if entry.is_symlink():
                    found[Path(entry.path)] = "a link: not followed (watch reads only the folder it was given)"
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    found[Path(entry.path)] = (stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:  # gone between listing and stat
                continue
    return found


class FolderWatcher:
    """The folder mode's state and one scan of it, without threads or sleeps: `scan(now)` lists the
    folder, reads the files that have been stable for `settle` seconds by `now` and returns their
    records (watch_folder calls it every `interval`; a test calls it with the times it wants).
    Raises EdgeclfError when the folder does not exist or disappears."""

    def __init__(
        self,
        classifier: Classifier,
        folder: Path,
        settle: float,
        max_pixels: int,
        existing: bool = False,
        state: Path | None = None,
        reprocess: bool = False,
    ):
        self.classifier, self.folder, self.settle = classifier, Path(folder), settle
        self.reprocess, self.max_pixels = reprocess, max_pixels
        if not self.folder.is_dir():
            raise EdgeclfError(f"{self.folder}: no such folder to watch")
        self.seen = _Seen(Path(state) if state else self.folder / STATE_FILE)
        self.done: dict[Path, tuple[int, int] | str] = {} if existing else _listing(self.folder)
        self.pending: dict[Path, _Pending] = {}
        self.classified = 0

    def scan(self, now: float, stop: StopSignal | None = None) -> list[dict]:
        """The records of this scan, in the order of the folder's sorted listing; stops early
        (between files) when `stop` is set."""
        try:
            listing = _listing(self.folder)
        except (FileNotFoundError, NotADirectoryError):
            raise EdgeclfError(f"{self.folder}: the watched folder disappeared; watch stopped") from None
        records = []
        for path in [p for p in self.pending if p not in listing]:
            del self.pending[path]
            records.append({"image": str(path), "error": "vanished before it could be read"})
        for path, signature in sorted(listing.items()):
            if self.done.get(path) == signature:
                continue
            if stop is not None and stop.stopped:
                break
            if isinstance(signature, str):
                self.done[path] = signature
                records.append({"image": str(path), "error": signature})
                continue
            waiting = self.pending.get(path)
            if waiting is None or waiting.signature != signature:  # new, or still being written
                self.pending[path] = _Pending(signature, now)
                continue
            if now - waiting.stable_since < self.settle:
                continue
            record = _read(self.classifier, path, signature, self.seen, self.reprocess, waiting, self.max_pixels)
            if record is None and waiting.failures < RETRIES:
                continue  # could not be read yet: the next scan tries again
            del self.pending[path]
            self.done[path] = signature
            if record is None:
                record = {"image": str(path), "error": f"could not be read after {RETRIES} tries"}
            if record:
                records.append(record)
                self.classified += "label" in record
        return records


def watch_folder(
    classifier: Classifier,
    folder: Path,
    emit: Callable[[dict], None],
    options: WatchConfig,
    max_pixels: int,
    stop: StopSignal | None = None,
    existing: bool = False,
    state: Path | None = None,
    reprocess: bool = False,
) -> int:
    """Poll folder every options.interval seconds, reading a file once its size held for
    options.settle (watch.*; see the module docstring for what is read when); images over
    max_pixels (predict.max_pixels) are refused from their header;
    emit() gets each file's top-1 answer or an error record. Files present at start are ignored
    unless `existing`; `state` is the state file (default FOLDER/.edgeclf-watch.json); `reprocess`
    reports contents already in it again. Runs until `stop` is set (the CLI's catches SIGINT and
    SIGTERM; without one it runs until the process ends: library code installs no handlers);
    returns the number of images classified. Raises EdgeclfError when the folder does not exist
    or disappears. The scanning itself is FolderWatcher.scan."""
    watcher = FolderWatcher(classifier, folder, options.settle, max_pixels, existing, state, reprocess)
    stop = stop or StopSignal(signals=())  # a library call installs no signal handlers: the CLI passes one
    while not stop.stopped:
        for record in watcher.scan(time.monotonic(), stop):
            emit(record)
        stop.wait(options.interval)
    return watcher.classified


def _read(
    classifier: Classifier, path: Path, signature, seen: _Seen, reprocess: bool, waiting: _Pending, max_pixels: int
):
    """The record to emit for a settled file, {} when its content was reported before, or None when
    it cannot be read yet (waiting.failures counts the tries)."""
    if signature[0] > MAX_FILE_BYTES:
        return {"image": str(path), "error": f"over {MAX_FILE_BYTES // 2**20} MiB; not read"}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {"image": str(path), "error": "vanished before it could be read"}
    except OSError:  # permissions, a lock, a network filesystem hiccup
        waiting.failures += 1
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen and not reprocess:
        return {}
    try:
        record = top1(classifier, str(path), *decode_timed(io.BytesIO(data), classifier.info.image_size, max_pixels))
    except ImageError as exc:
        return {"image": str(path), "error": str(exc)}
    seen.add(digest, path.name)
    return record


def watch_camera(
    classifier: Classifier,
    device: int,
    emit: Callable[[dict], None],
    every: float = 0.0,
    stop: StopSignal | None = None,
) -> int:
    """Classify frames from OpenCV camera `device` (pip install 'edgeclf[camera]'), emitting each
    frame's top-1 answer, until `stop` is set; returns the number of frames classified. Raises
    EdgeclfError when OpenCV is missing or the camera cannot be opened or read."""
    try:
        import cv2
    except ImportError:
        raise EdgeclfError("--camera needs OpenCV: pip install 'edgeclf[camera]' (opencv-python-headless)") from None
    from PIL import Image

    stop = stop or StopSignal(signals=())  # a library call installs no signal handlers: the CLI passes one
    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        raise EdgeclfError(f"--camera {device}: cannot open the camera")
    count = 0
    try:
        while not stop.stopped:
            ok, frame = capture.read()
            if not ok:
                raise EdgeclfError(f"--camera {device}: no frame")
            rgb = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            emit(top1(classifier, f"camera:{device}#{count}", resize(to_rgb8(rgb), classifier.info.image_size)))
            count += 1
            if every:
                stop.wait(every)
    finally:
        capture.release()
    return count
