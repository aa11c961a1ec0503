"""`edgeclf watch`: the long-running device mode. Classifies every new image that appears in a
folder (or frames from a camera, when OpenCV is installed), printing label, probability and
latency per image, until SIGINT or SIGTERM. TensorFlow-free."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeclf.errors import EdgeclfError
from edgeclf.images import EXTENSIONS, ImageError, resize, to_rgb8
from edgeclf.predict import classify, decode
from edgeclf.runtime.classifier import Classifier


class Stop:
    """Set by SIGINT/SIGTERM; the loops check it between images and exit cleanly."""

    def __init__(self):
        self.event = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.event.set())

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


def _result(classifier: Classifier, source: str, pixels: np.ndarray, decode_ms: float | None = None) -> dict:
    """{"image", "label", "probability", and the spans (decode_ms, preprocess_ms, invoke_ms,
    postprocess_ms)}: the top-1 answer for one image."""
    answer = classify(classifier, pixels, 1, decode_ms)
    top = answer.pop("top_k")[0]
    return {"image": source, **top, **answer}


def watch_folder(
    classifier: Classifier,
    folder: Path,
    emit: Callable[[dict], None],
    interval: float = 0.5,
    settle: float = 0.2,
    stop: Stop | None = None,
    existing: bool = False,
) -> int:
    """Poll folder for new image files (ignoring those present at start unless `existing`); a file
    is read once its size has stopped changing for `settle` seconds. Returns images classified."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgeclfError(f"{folder}: no such folder to watch")
    stop = stop or Stop()
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
                emit(_result(classifier, str(path), *decode(path, classifier.info.image_size)))
                count += 1
            except ImageError as exc:
                emit({"image": str(path), "error": str(exc)})
        stop.wait(max(interval, settle))
    return count


def watch_camera(
    classifier: Classifier, device: int, emit: Callable[[dict], None], every: float = 0.0, stop: Stop | None = None
) -> int:
    """Classify frames from an OpenCV camera (pip install opencv-python-headless)."""
    try:
        import cv2
    except ImportError:
        raise EdgeclfError("--camera needs OpenCV: pip install 'edgeclf[camera]' (opencv-python-headless)") from None
    from PIL import Image

    stop = stop or Stop()
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
            emit(_result(classifier, f"camera:{device}#{count}", resize(to_rgb8(rgb), classifier.info.image_size)))
            count += 1
            if every:
                stop.wait(every)
    finally:
        capture.release()
    return count
