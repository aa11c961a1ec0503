"""The report's galleries: the test images the float model gets wrong, the images where an int8 file
answers otherwise than the float model, and a few right answers per class, each a thumbnail with
where the float model looks (Grad-CAM, edgeclf.measure.explain).

The split is streamed through the run's own data source (folder or pack: edgeclf.data.decoded), twice
at most (the float model, the int8 file); only the chosen images are decoded again, so memory is one
batch plus report.gallery_images thumbnails per gallery however large the split."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from edgeclf.core.config import ReportConfig
from edgeclf.core.run_directory import Run
from edgeclf.data.decoded import DecodedSplit

CORRECT_PER_CLASS = 2
BATCH = 32


@dataclass
class Tile:
    index: int  # position in the split
    true: str
    answer: str  # the float model's
    probability: float
    int8_answer: str | None
    int8_probability: float | None
    png: bytes  # the thumbnail with the heatmap of the float model's answer

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


@dataclass
class Galleries:
    split: str
    images: int
    int8: str | None  # the int8 artifact compared with the float model
    misclassified: list[Tile] = field(default_factory=list)
    flips: list[Tile] = field(default_factory=list)
    correct: list[Tile] = field(default_factory=list)
    misclassified_total: int = 0
    flips_total: int = 0


def build_galleries(run: Run, split: str, int8: str | None, cfg: ReportConfig) -> Galleries:
    """The three galleries of `split`, each at most cfg.gallery_images tiles, chosen across the true
    classes in turn (so that one class does not fill a gallery)."""
    from edgeclf.measure.explain import GradCam
    from edgeclf.measure.keras_baseline import compiled_predict
    from edgeclf.runtime.open import open_classifier
    from edgeclf.training.models import load_model

    model = load_model(run.model_path)
    with DecodedSplit(run, split) as data:
        labels = data.labels
        float_probs = np.asarray(data.predict(compiled_predict(model)))
        int8_probs = np.asarray(data.predict(open_classifier(run.path, int8).predict_pixels)) if int8 else None
        answers = float_probs.argmax(1)
        wrong = np.flatnonzero(answers != labels)
        flips = np.flatnonzero(answers != int8_probs.argmax(1)) if int8_probs is not None else np.array([], int)
        right = np.flatnonzero(answers == labels)
        limit = cfg.gallery_images
        chosen = {
            "misclassified": _across_classes(wrong, labels, limit),
            "flips": _across_classes(flips, labels, limit),
            "correct": _across_classes(
                right, labels, min(limit, CORRECT_PER_CLASS * len(run.classes)), CORRECT_PER_CLASS
            ),
        }
        wanted = sorted({i for picks in chosen.values() for i in picks})
        pixels = data.take(wanted) if wanted else np.zeros((0,), np.uint8)
    cam = GradCam(model)
    tiles: dict[int, Tile] = {}
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        for i, explanation in zip(batch, cam(pixels[start : start + BATCH], answers[batch]), strict=True):
            tiles[i] = _tile(i, run, labels, float_probs, int8_probs, explanation, cfg.thumbnail_px)
    return Galleries(
        split,
        len(labels),
        int8,
        *[[tiles[i] for i in chosen[kind]] for kind in ("misclassified", "flips", "correct")],
        misclassified_total=len(wrong),
        flips_total=len(flips),
    )


def _across_classes(candidates: np.ndarray, labels: np.ndarray, limit: int, per_class: int | None = None) -> list[int]:
    """Up to `limit` of the candidates, taken from each true class in turn (first ones first), at
    most per_class from one class."""
    queues = {c: [int(i) for i in candidates if labels[i] == c] for c in sorted(set(labels[candidates].tolist()))}
    if per_class is not None:
        queues = {c: q[:per_class] for c, q in queues.items()}
    picked: list[int] = []
    while len(picked) < limit and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return sorted(picked)


def _tile(i: int, run: Run, labels, float_probs, int8_probs, explanation, size: int) -> Tile:
    from edgeclf.measure.explain import overlay_png

    answer = int(float_probs[i].argmax())
    other = int(int8_probs[i].argmax()) if int8_probs is not None else None
    return Tile(
        i,
        run.classes[int(labels[i])],
        run.classes[answer],
        float(float_probs[i, answer]),
        run.classes[other] if other is not None else None,
        float(int8_probs[i, other]) if other is not None else None,
        overlay_png(explanation, size),
    )
