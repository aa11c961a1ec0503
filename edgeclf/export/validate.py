"""Validation at export: every artifact runs on the validation split and is compared with the
Keras model it came from, before it counts as written."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeclf.export.formats import ArtifactSpec


@dataclass
class Reference:
    """The float model's validation predictions (and the QAT model's, when there is one)."""

    labels: np.ndarray
    float_probs: np.ndarray
    qat_probs: np.ndarray | None = None

    @property
    def float_accuracy(self) -> float:
        return float((self.float_probs.argmax(1) == self.labels).mean())


def validate(spec: ArtifactSpec, probs: np.ndarray, ref: Reference, tolerance: float, max_drop: float) -> dict:
    """The validation record written into artifacts.json; `passed` says whether the artifact counts."""
    top1 = probs.argmax(1)
    accuracy = float((top1 == ref.labels).mean())
    record = {
        "split": "val",
        "images": int(len(ref.labels)),
        "accuracy": accuracy,
        "float_accuracy": ref.float_accuracy,
        "drop_points": round((ref.float_accuracy - accuracy) * 100, 4),
        "agreement_with_float": float((top1 == ref.float_probs.argmax(1)).mean()),
    }
    source = ref.qat_probs if spec.source == "qat" else ref.float_probs
    if spec.source == "qat" and source is not None:
        record["agreement_with_source"] = float((top1 == source.argmax(1)).mean())
    if spec.check == "close":
        diff = float(np.abs(probs - source).max())
        record.update(check="max_abs_diff", max_abs_diff=diff, tolerance=tolerance, passed=diff <= tolerance)
        if not record["passed"]:
            record["reason"] = f"max |p - p_keras| = {diff:.3g} > tolerance {tolerance:g}"
    else:
        record.update(check="accuracy_drop", max_drop=max_drop, passed=record["drop_points"] <= max_drop)
        if not record["passed"]:
            record["reason"] = (
                f"validation accuracy {accuracy:.2%} is {record['drop_points']:.2f} points below the "
                f"float model's {ref.float_accuracy:.2%} (--max-drop {max_drop:g})"
            )
    return record
