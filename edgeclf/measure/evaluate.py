"""`edgeclf evaluate`: the float Keras model and every artifact on one split, side by side.

Writes RUN_DIR/reports/eval.json (one record per artifact name, accuracy as a fraction, with the
machine, engine and kernels each number was measured with) and, per artifact, a confusion matrix
as CSV and PNG under reports/confusion/. Progress is logged to `edgeclf.measure.evaluate`.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeclf import __version__
from edgeclf.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from edgeclf.core.run_directory import ARTIFACTS, REPORTS, Run
from edgeclf.data.decoded import DecodedSplit
from edgeclf.measure.keras_baseline import KERAS_NAME, KerasClassifier
from edgeclf.measure.metrics import classification_metrics
from edgeclf.measure.plots import confusion_png
from edgeclf.runtime.artifact import pick, read_artifacts
from edgeclf.runtime.backends import for_engine, runnable
from edgeclf.runtime.classifier import Classifier
from edgeclf.runtime.machine import fingerprint

log = logging.getLogger(__name__)


@dataclass
class ArtifactScore:
    """One artifact's metrics on the split (metrics: classification_metrics' accuracy, top-5,
    per-class, macro and weighted averages, confusion matrix) and what measured them."""

    name: str
    format: str
    precision: str
    engine: str
    engine_version: str
    kernels: str
    threads: int | str
    metrics: dict
    agreement_with_float: float
    delta_points: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "format": self.format,
            "precision": self.precision,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "kernels": self.kernels,
            "threads": self.threads,
            **self.metrics,
            "agreement_with_float": self.agreement_with_float,
            "delta_points": self.delta_points,
        }


@dataclass
class EvalResult:
    path: Path
    split: str
    images: int
    scores: list[ArtifactScore]  # the Keras float model first


def evaluate_run(run_dir: Path, split: str, names: list[str] | None = None, engine: str | None = None) -> EvalResult:
    """Evaluate the float Keras model and the run's artifacts (all, or `names`) on `split`, and
    write reports/eval.json and the confusion matrices (evaluate.split and evaluate.engine are
    the command's settings); `engine` (None or auto: as recorded) overrides the engine of ONNX
    artifacts (edgeclf.runtime.backends.resolve_engine). Raises RunDirError, DataError (no such
    split), EdgeclfError (an unknown artifact name or engine, a TFLite artifact named with an
    ONNX engine)."""
    run = Run.open(run_dir)
    entries = read_artifacts(run.path) if (run.export_dir / ARTIFACTS).is_file() else []
    entries = pick(entries, names, "--artifacts")
    if not names:  # --engine applies to the ONNX files it can run; named artifacts run or fail clearly
        entries = for_engine(entries, engine)
    if not names:  # named ones run or fail clearly; the rest need their engine installed
        entries, skipped = runnable(entries, engine)
        if skipped:
            log.warning(f"{', '.join(skipped)}: skipped, their engine is not installed here")
    with DecodedSplit(run, split) as images:  # decoded once, streamed a batch at a time to every model
        labels = images.labels
        log.info(f"evaluating on the {split} split: {len(labels)} images, {len(run.classes)} classes")
        keras = KerasClassifier(run.model_path, run.classes)
        float_probs = images.predict(keras.predict_pixels)
        scores = [_score(KERAS_NAME, "keras", "fp32", keras, labels, float_probs, float_probs, run.classes)]
        for info in entries:
            classifier = Classifier.from_run(run.path, info, engine=engine)
            probs = images.predict(classifier.predict_pixels)
            scores.append(
                _score(info.name, info.format, info.precision, classifier, labels, probs, float_probs, run.classes)
            )
    for score in scores:
        score.delta_points = round((score.accuracy - scores[0].accuracy) * 100, 4)
    path = _write(run, split, len(labels), scores)
    return EvalResult(path, split, len(labels), scores)


def _score(name, fmt, precision, classifier, labels, probs, float_probs, classes) -> ArtifactScore:
    return ArtifactScore(
        name,
        fmt,
        precision,
        classifier.engine,
        classifier.version,
        classifier.kernels,
        getattr(classifier, "threads", None) or "engine default",
        classification_metrics(labels, probs, classes),
        float((probs.argmax(1) == np.asarray(float_probs).argmax(1)).mean()),
    )


def _write(run: Run, split: str, images: int, scores: list[ArtifactScore]) -> Path:
    out = run.path / REPORTS
    (out / "confusion").mkdir(parents=True, exist_ok=True)
    for score in scores:
        matrix = score.metrics["confusion_matrix"]
        title = f"{score.name} on {split} ({score.accuracy:.2%})"
        atomic_write_text(out / "confusion" / f"{score.name}.csv", _confusion_csv(matrix, run.classes))
        atomic_write_bytes(out / "confusion" / f"{score.name}.png", confusion_png(matrix, run.classes, title))
    return atomic_write_json(
        out / "eval.json",
        {
            "edgeclf_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "split": split,
            "images": images,
            "machine": fingerprint(None, "cpu"),  # where these accuracies were measured
            "classes": run.classes,
            "artifacts": {s.name: s.to_json() for s in scores},
        },
    )


def _confusion_csv(matrix, classes) -> str:
    buf = io.StringIO()
    buf.write("true\\predicted," + ",".join(classes) + "\n")
    for name, row in zip(classes, matrix, strict=True):
        buf.write(name + "," + ",".join(str(v) for v in row) + "\n")
    return buf.getvalue()
