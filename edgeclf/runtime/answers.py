"""One image's answer, as predict, watch and serve report it: the ranked labels and the timed spans
(decode_ms, preprocess_ms, invoke_ms, postprocess_ms; defined in edgeclf.runtime.timing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edgeclf.core.errors import EdgeclfError
from edgeclf.core.images import MAX_PIXELS, Admit, load_image
from edgeclf.runtime.classifier import Classifier


def check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise EdgeclfError(f"--top-k {top_k}: must be at least 1")


def ranked(labels: list[str], probs: np.ndarray, k: int) -> list[dict]:
    """The k most probable labels, most probable first (ties keep the label order)."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "probability": float(probs[i])} for i in order]


def decode_timed(
    source: str | Path | BinaryIO, size: tuple[int, int], max_pixels: int = MAX_PIXELS, admit: Admit | None = None
) -> tuple[np.ndarray, float]:
    """(uint8 pixels through the shared preprocessing, decode_ms) for an image file or file object.
    Raises edgeclf.core.images.ImageError when it is not a usable image. With `admit` (serve's decode
    budget), decode_ms starts once the decode is admitted: waiting for room is not decoding."""
    started = time.perf_counter()

    @contextmanager
    def timed_admit(pixels: int) -> Iterator[None]:
        nonlocal started
        with admit(pixels):
            started = time.perf_counter()
            yield

    pixels = load_image(source, size, max_pixels, timed_admit if admit else None)
    return pixels, (time.perf_counter() - started) * 1000


def answer(classifier: Classifier, pixels: np.ndarray, top_k: int, decode_ms: float | None = None) -> dict:
    """One image's uint8 pixels [H,W,3] -> {"top_k": the ranked labels, and the spans decode_ms
    (when given), preprocess_ms, invoke_ms, postprocess_ms}, each rounded to 0.1 microsecond."""
    probs, spans = classifier.timed(pixels[None])
    timing = ({"decode_ms": decode_ms} if decode_ms is not None else {}) | spans
    return {"top_k": ranked(classifier.labels, probs[0], top_k), **{k: round(v, 4) for k, v in timing.items()}}


def top1(classifier: Classifier, source: str, pixels: np.ndarray, decode_ms: float | None = None) -> dict:
    """{"image": source, "label", "probability", and the spans}: the top-1 answer watch reports."""
    result = answer(classifier, pixels, 1, decode_ms)
    best = result.pop("top_k")[0]
    return {"image": source, **best, **result}
