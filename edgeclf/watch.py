"""`edgeclf watch`: the long-running device mode. Classifies every new image that appears in a
folder (or frames from a camera, when OpenCV is installed), printing label, probability and
latency per image, until SIGINT or SIGTERM. TensorFlow-free."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeclf.errors import EdgeclfError
from edgeclf.images import EXTENSIONS, ImageError, resize, to_rgb8
from edgeclf.runtime.answers import decode_timed, top1
from edgeclf.runtime.classifier import Classifier
from edgeclf.signals import StopSignal


def watch_folder(
    classifier: Classifier,
    folder: Path,
    emit: Callable[[dict], None],
    interval: float = 0.5,
    settle: float = 0.2,
    stop: StopSignal | None = None,
    existing: bool = False,
) -> int:
    """Poll folder every `interval` seconds for new image files (ignoring those present at start
    unless `existing`); a file is read once its size has stopped changing for `settle` seconds, and
    emit() gets its top-1 answer (or {"image", "error"} when it is not a usable image). Runs until
    `stop` is set (SIGINT/SIGTERM by default); returns the number of images classified. Raises
    EdgeclfError when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgeclfError(f"{folder}: no such folder to watch")
    stop = stop or StopSignal()
    seen: set[Path] = set() if existing else {p for p in folder.iterdir() if p.is_file()}
    sizes: dict[Path, int] = {}
    count = 0
    while not stop.stopped:
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p not in seen):
            if path.suffix.lower() not in EXTENSIONS or path.name.startswith("."):
                seen.add(path)
                continue
            size = path.stat().st_size
            if sizes.get(path) != size:  # still being written: look again next round
                sizes[path] = size
                continue
            seen.add(path)
            try:
                emit(top1(classifier, str(path), *decode_timed(path, classifier.info.image_size)))
                count += 1
            except ImageError as exc:
                emit({"image": str(path), "error": str(exc)})
        stop.wait(max(interval, settle))
    return count


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

    stop = stop or StopSignal()
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
