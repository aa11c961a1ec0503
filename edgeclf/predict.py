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
            files += sorted(p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                            and not any(part.startswith(".") for part in p.relative_to(target).parts))
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


def classify(classifier: Classifier, pixels: np.ndarray, top_k: int) -> dict:
    """One image's uint8 pixels [H,W,3] -> {"top_k": the ranked labels, "latency_ms": inference time,
    preprocessing excluded}. What predict, watch and serve report per image."""
    started = time.perf_counter()
    probs = classifier.predict_pixels(pixels[None])[0]
    latency = (time.perf_counter() - started) * 1000
    return {"top_k": ranked(classifier.labels, probs, top_k), "latency_ms": round(latency, 3)}


def predict(model: Path, targets: list[Path], artifact: str | None = None, top_k: int = 5,
            threads: int | None = None, kernels: str = "fast") -> tuple[str, list[dict]]:
    """(artifact name, one {"image", "top_k": [{"label", "probability"}], "latency_ms"} per image)."""
    classifier = open_classifier(model, artifact, threads, kernels)
    check_top_k(top_k)
    results = []
    for path in collect_images(targets):
        try:
            pixels = load_image(path, classifier.info.image_size)
        except ImageError as exc:
            results.append({"image": str(path), "error": str(exc)})
            continue
        results.append({"image": str(path), **classify(classifier, pixels, top_k)})
    return classifier.info.name, results
