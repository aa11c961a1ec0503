"""`edgeclf predict`: top-k labels for image files, with a run directory, an export folder or a
bare .tflite/.onnx. TensorFlow-free: this is what runs on the device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.config import PredictConfig
from edgeclf.core.images import ImageError, find_images
from edgeclf.runtime.answers import answer, check_top_k, decode_timed
from edgeclf.runtime.open import open_classifier


@dataclass
class PredictResult:
    """The artifact that answered, and one record per image: {"image", "top_k": [{"label",
    "probability"}], "decode_ms", "preprocess_ms", "invoke_ms", "postprocess_ms"}, or {"image",
    "error"} for a file that is not a usable image."""

    artifact: str
    engine: str
    results: list[dict]


def predict(
    model: Path,
    targets: list[Path],
    options: PredictConfig,
    artifact: str | None = None,
    integrity: bool = True,
) -> PredictResult:
    """Classify every image file named in, or found under, targets, with the settings in `options`
    (predict.* from load_config: a run's config.yaml or the defaults, with the command line on
    top). The classifier is warmed up once before the first image, so that no image is timed on the
    engine's first call. Raises EdgeclfError for a bad option, a missing model or artifact, or when
    no image is found."""
    check_top_k(options.top_k)
    classifier = open_classifier(
        model, artifact, options.threads, options.kernels, engine=options.engine, integrity=integrity
    )
    results = []
    for path in find_images(targets):
        try:
            pixels, decode_ms = decode_timed(path, classifier.info.image_size, options.max_pixels)
        except ImageError as exc:
            results.append({"image": str(path), "error": str(exc)})
            continue
        results.append({"image": str(path), **answer(classifier, pixels, options.top_k, decode_ms)})
    return PredictResult(classifier.info.name, classifier.engine, results)
