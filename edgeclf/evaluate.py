"""`edgeclf evaluate`: the float Keras model and every artifact on one split, side by side.

Writes RUN_DIR/reports/eval.json (one record per artifact name, accuracy as a fraction) and, per
artifact, a confusion matrix as CSV and PNG under reports/confusion/.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgeclf import __version__
from edgeclf.errors import EdgeclfError
from edgeclf.keras_baseline import KERAS_NAME, KerasClassifier
from edgeclf.metrics import classification_metrics
from edgeclf.plots import confusion_png
from edgeclf.run import Run
from edgeclf.rundir import atomic_write_bytes, atomic_write_json, atomic_write_text
from edgeclf.runtime.artifact import read_artifacts
from edgeclf.runtime.classifier import Classifier
from edgeclf.runtime.machine import fingerprint

REPORTS = "reports"


@dataclass
class EvalResult:
    path: Path
    records: dict


def evaluate_run(
    run_dir: Path, split: str = "test", names: list[str] | None = None, console: Console | None = None
) -> EvalResult:
    console = console or Console(highlight=False)
    run = Run.open(run_dir)
    entries = read_artifacts(run.path) if (run.export_dir / "artifacts.json").is_file() else []
    if names:
        unknown = sorted(set(names) - {a.name for a in entries})
        if unknown:
            raise EdgeclfError(
                f"--artifacts: {', '.join(unknown)} not in artifacts.json; "
                f"choose from {', '.join(a.name for a in entries) or '(none: run edgeclf export)'}"
            )
        entries = [a for a in entries if a.name in names]
    pixels, labels, paths = run.images(split)
    console.print(f"evaluating on the {split} split: {len(labels)} images, {len(run.classes)} classes")
    keras = KerasClassifier(run.model_path, run.classes)
    float_probs = keras.predict_pixels(pixels)
    float_top1 = float_probs.argmax(1)
    records = {KERAS_NAME: _record(KERAS_NAME, "keras", "fp32", labels, float_probs, float_top1, run.classes, keras)}
    for info in entries:
        classifier = Classifier.from_run(run.path, info)
        probs = classifier.predict_pixels(pixels)
        records[info.name] = _record(
            info.name, info.format, info.precision, labels, probs, float_top1, run.classes, classifier
        )
    float_acc = records[KERAS_NAME]["accuracy"]
    for record in records.values():
        record["delta_points"] = round((record["accuracy"] - float_acc) * 100, 4)

    out = run.path / REPORTS
    (out / "confusion").mkdir(parents=True, exist_ok=True)
    for name, record in records.items():
        atomic_write_text(out / "confusion" / f"{name}.csv", _confusion_csv(record["confusion_matrix"], run.classes))
        atomic_write_bytes(
            out / "confusion" / f"{name}.png",
            confusion_png(record["confusion_matrix"], run.classes, f"{name} on {split} ({record['accuracy']:.2%})"),
        )
    path = atomic_write_json(
        out / "eval.json",
        {
            "edgeclf_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "split": split,
            "images": int(len(labels)),
            "machine": fingerprint(None, "cpu"),  # where these accuracies were measured
            "classes": run.classes,
            "artifacts": records,
        },
    )
    print_table(records, split, console)
    return EvalResult(path, records)


def _record(name, fmt, precision, labels, probs, float_top1, classes, classifier) -> dict:
    metrics = classification_metrics(labels, probs, classes)
    return {
        "name": name,
        "format": fmt,
        "precision": precision,
        "engine": classifier.engine,
        "engine_version": classifier.version,
        "kernels": classifier.kernels,
        "threads": getattr(classifier, "threads", None) or "engine default",
        **metrics,
        "agreement_with_float": float((probs.argmax(1) == float_top1).mean()),
    }


def _confusion_csv(matrix, classes) -> str:
    buf = io.StringIO()
    buf.write("true\\predicted," + ",".join(classes) + "\n")
    for name, row in zip(classes, matrix, strict=False):
        buf.write(name + "," + ",".join(str(v) for v in row) + "\n")
    return buf.getvalue()


def print_table(records: dict, split: str, console: Console) -> None:
    table = Table(title=f"{split} split")
    for column in ("artifact", "precision", "accuracy", "top-5", "macro F1", "Δ pts", "agreement"):
        table.add_column(column, justify="left" if column in ("artifact", "precision") else "right")
    for r in records.values():
        top5 = f"{r['top5_accuracy']:.2%}" if "top5_accuracy" in r else "-"
        table.add_row(
            r["name"],
            r["precision"],
            f"{r['accuracy']:.2%}",
            top5,
            f"{r['macro']['f1']:.4f}",
            f"{r['delta_points']:+.2f}",
            f"{r['agreement_with_float']:.2%}",
        )
    console.print(table)
