"""`edgeclf predict`: top-k labels for images, with a run directory or a bare .tflite/.onnx.
TensorFlow-free: this is what runs on the device."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeclf.errors import EdgeclfError
from edgeclf.images import EXTENSIONS, ImageError, load_image
from edgeclf.runtime.classifier import Classifier
from edgeclf.runtime.open import open_classifier


def collect_images(targets: list[Path]) -> list[Path]:
    """Image files named directly, and image files under named folders (recursively, sorted)."""
    files: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            files += sorted(
                p
                for p in target.rglob("*")
                if p.is_file()
                and p.suffix.lower() in EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(target).parts)
            )
        elif target.is_file():
            files.append(target)
        else:
            raise EdgeclfError(f"{target}: no such file or folder")
    if not files:
        raise EdgeclfError(f"no images found in {', '.join(map(str, targets))}")
    return files


def ranked(labels: list[str], probs: np.ndarray, k: int) -> list[dict]:
    """The k most probable labels, most probable first (ties keep the label order)."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"label": labels[i], "probability": float(probs[i])} for i in order]


def check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise EdgeclfError(f"--top-k {top_k}: must be at least 1")


def classify(classifier: Classifier, pixels: np.ndarray, top_k: int, decode_ms: float | None = None) -> dict:
    """One image's uint8 pixels [H,W,3] -> {"top_k": the ranked labels, and the spans decode_ms
    (when given), preprocess_ms, invoke_ms, postprocess_ms}: what predict, watch and serve report
    per image, under the names bench.json uses (edgeclf.runtime.timing.SPANS)."""
    probs, spans = classifier.timed(pixels[None])
    timing = ({"decode_ms": decode_ms} if decode_ms is not None else {}) | spans
    return {"top_k": ranked(classifier.labels, probs[0], top_k), **{k: round(v, 4) for k, v in timing.items()}}


def decode(path, size: int) -> tuple[np.ndarray, float]:
    """(uint8 pixels, decode_ms) for one image file or file object."""
    started = time.perf_counter()
    pixels = load_image(path, size)
    return pixels, (time.perf_counter() - started) * 1000


def predict(
    model: Path,
    targets: list[Path],
    artifact: str | None = None,
    top_k: int = 5,
    threads: int | None = None,
    kernels: str = "fast",
) -> tuple[str, list[dict]]:
    """(artifact name, one {"image", "top_k": [{"label", "probability"}], "decode_ms", "preprocess_ms",
    "invoke_ms", "postprocess_ms"} per image). The classifier is warmed up once before the first
    image, so that no image is timed on the engine's first call."""
    classifier = open_classifier(model, artifact, threads, kernels)
    check_top_k(top_k)
    results = []
    for path in collect_images(targets):
        try:
            pixels, decode_ms = decode(path, classifier.info.image_size)
        except ImageError as exc:
            results.append({"image": str(path), "error": str(exc)})
            continue
        results.append({"image": str(path), **classify(classifier, pixels, top_k, decode_ms)})
    return classifier.info.name, results
