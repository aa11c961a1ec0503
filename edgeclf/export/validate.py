"""Step 2 of an export: run an artifact's file on the validation split and compare it with the
Keras model it came from, returning a typed verdict (edgeclf.export.errors names each failure).

The checks, in order: the file is what its precision says (no float tensors in an int8 TFLite,
int8 weights in an int8 ONNX, the I/O dtypes described); the output has one probability per class
for every image; then, by the format table's `check` column:

- "close" (fp32, fp16): the probabilities within a tolerance of the source model's on the
  validation split (the largest difference; fp32_tolerance, fp16_tolerance);
- "accuracy" (int8, dynamic-range): the quantization gate of edgeclf.export.gate: the accuracy drop
  against the float model, judged on the validation split topped up with training images
  (export.gate_images) with an interval, fails only when the interval lies beyond max_drop, and
  says "inconclusive" when the images cannot resolve it;
- bf16 (8 bits of mantissa): the same drop gate, and its top-1 disagreement rate against
  1 - bf16_min_agreement; the probability differences are recorded, not gated (see _judge_bf16).

Accuracy, drop and agreement in the record are the validation split's (held out); the gate's own
numbers are in `gate`, with where its images came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeclf.core.config import ExportConfig
from edgeclf.core.images import normalize
from edgeclf.data.decoded import DecodedSplit
from edgeclf.export.errors import (
    AccuracyDropTooLarge,
    ExportError,
    NotIntegerError,
    OutputMismatch,
    ToleranceExceeded,
    ValidationFailed,
)
from edgeclf.export.formats import spec_named
from edgeclf.export.gate import accuracy_drop_gate, rate_gate
from edgeclf.measure.keras_baseline import compiled_predict
from edgeclf.runtime.artifact import ArtifactInfo
from edgeclf.runtime.classifier import Classifier

FAILURES = {
    "not_integer": NotIntegerError,
    "output": OutputMismatch,
    "tolerance": ToleranceExceeded,
    "accuracy_drop": AccuracyDropTooLarge,
}


@dataclass
class Reference:
    """The validation split (decoded once, streamed in batches: edgeclf.data.decoded) and the float
    model's predictions on it (and the QAT model's, when the run has one): what every artifact is
    compared with. `extra`: training images that calibration did not use, which the quantization
    gates add to the validation split so that they can resolve their limits (edgeclf.export.gate);
    None when the validation split alone is export.gate_images or more. Close it (or use it in a
    with block) to drop the decoded pixels."""

    split: DecodedSplit
    float_probs: np.ndarray
    qat_probs: np.ndarray | None = None
    extra: DecodedSplit | None = None
    extra_float_probs: np.ndarray | None = None
    extra_qat_probs: np.ndarray | None = None
    extra_calibration: int = 0  # how many of the extra images calibration used (a small folder's)

    @classmethod
    def compute(cls, run, model, qat_model=None, limits: ExportConfig | None = None, seed: int = 0) -> Reference:
        """Predict the run's validation split (and the gate's extra training images, when limits
        are given) with the float model (and the QAT model)."""
        split = DecodedSplit(run, "val")
        extra, calibrated = None, 0
        if limits is not None and len(split) < limits.gate_images:
            positions, calibrated = run.gate_positions(limits.gate_images - len(split), seed, limits.calibration_images)
            extra = DecodedSplit(run, "train", positions=positions) if positions else None
        # a compiled call over 32 images at a time inside each decoded batch: memory stays one chunk's
        # activations however large the split (Keras' model.predict per batch grew it by half at 10 x N)
        run_float = compiled_predict(model)  # uint8 pixels: the model normalizes
        run_qat = None
        if qat_model is not None:
            norm, compiled_qat = run.metadata["normalization"], compiled_predict(qat_model)

            def run_qat(pixels):
                return compiled_qat(normalize(pixels, norm))

        def probs(decoded, predict):
            return None if decoded is None or predict is None else np.asarray(decoded.predict(predict))

        return cls(
            split,
            probs(split, run_float),
            probs(split, run_qat),
            extra,
            probs(extra, run_float),
            probs(extra, run_qat),
            calibrated,
        )

    def gate_sources(self) -> dict:
        """Where the gate's images come from (recorded with every gate)."""
        extra = 0 if self.extra is None else len(self.extra)
        return {"val": len(self.split), "train": extra - self.extra_calibration, "calibration": self.extra_calibration}

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels

    def gate_labels(self) -> np.ndarray:
        return self.labels if self.extra is None else np.concatenate([self.labels, self.extra.labels])

    def gate_probs(self, source: str) -> np.ndarray:
        """The float (source "float") or QAT model's probabilities on the gate's images."""
        if source == "qat":
            val, extra = self.qat_probs, self.extra_qat_probs
        else:
            val, extra = self.float_probs, self.extra_float_probs
        return val if self.extra is None else np.concatenate([val, extra])

    def close(self) -> None:
        self.split.close()
        if self.extra is not None:
            self.extra.close()

    def __enter__(self) -> Reference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def float_accuracy(self) -> float:
        return float((self.float_probs.argmax(1) == self.labels).mean())


@dataclass
class Verdict:
    """Whether an artifact counts, and the numbers behind it. failure is None when it passed, else
    one of FAILURES' keys; reason says why in one line."""

    passed: bool
    check: str  # max_abs_diff | accuracy_drop | integer | output
    images: int
    accuracy: float | None = None
    float_accuracy: float | None = None
    drop_points: float | None = None
    agreement_with_float: float | None = None
    agreement_with_source: float | None = None
    max_abs_diff: float | None = None
    p99_abs_diff: float | None = None  # bf16: the 99th percentile of the per-image max |p - p_keras|
    tolerance: float | None = None
    max_drop: float | None = None
    failure: str | None = None
    reason: str | None = None
    decision: str | None = None  # quantization gates: pass | fail | inconclusive (edgeclf.export.gate)
    gate: dict | None = None  # the gate's evidence: images, points per image, interval, counts
    agreement_gate: dict | None = None  # bf16: top-1 disagreement rate against 1 - bf16_min_agreement
    note: str | None = None  # inconclusive: what the images could not resolve
    gate_agreement: float | None = None  # top-1 agreement with the float model on the gate's images

    def to_json(self) -> dict:
        """The validation record written into artifacts.json (fields that do not apply are left out)."""
        return {"split": "val", **{k: v for k, v in asdict(self).items() if v is not None}}

    def error(self) -> ValidationFailed | None:
        """The typed error for a failed verdict (None when it passed)."""
        return None if self.passed else FAILURES[self.failure](self.reason)


def validate(info: ArtifactInfo, file: Path, ref: Reference, limits: ExportConfig) -> Verdict:
    """Validate the artifact described by info, stored at file, against ref (see the module
    docstring for the checks). Never raises for a bad artifact: the verdict says what is wrong."""
    spec = spec_named(info.name)
    content = Path(file).read_bytes()
    try:
        _check_precision(info, content, limits.int8_input)
    except ExportError as exc:
        return Verdict(False, "integer", len(ref.labels), failure="not_integer", reason=str(exc))
    classifier = Classifier(info, Path(file))
    probs = ref.split.predict(classifier.predict_pixels)
    if probs.shape != ref.float_probs.shape:
        return Verdict(
            False,
            "output",
            len(ref.labels),
            failure="output",
            reason=f"output shape {probs.shape}, expected {ref.float_probs.shape}",
        )
    top1 = probs.argmax(1)
    accuracy = float((top1 == ref.labels).mean())
    verdict = Verdict(
        True,
        "",
        len(ref.labels),
        accuracy=accuracy,
        float_accuracy=ref.float_accuracy,
        drop_points=round((ref.float_accuracy - accuracy) * 100, 4),
        agreement_with_float=float((top1 == ref.float_probs.argmax(1)).mean()),
    )
    source = ref.qat_probs if spec.source == "qat" else ref.float_probs
    if spec.source == "qat" and source is not None:
        verdict.agreement_with_source = float((top1 == source.argmax(1)).mean())
    if spec.check == "close" and spec.precision != "bf16":
        per_image = np.abs(probs - source).max(axis=1)
        verdict.max_abs_diff = float(per_image.max())
        tolerance = limits.fp16_tolerance if spec.precision == "fp16" else limits.fp32_tolerance
        verdict.check, verdict.tolerance = "max_abs_diff", tolerance
        if verdict.max_abs_diff > tolerance:
            verdict.passed, verdict.failure = False, "tolerance"
            verdict.reason = f"max |p - p_keras| = {verdict.max_abs_diff:.3g} > tolerance {tolerance:g}"
        return verdict
    # the quantization gates: on the validation split plus the extra training images
    gate_probs = probs if ref.extra is None else np.concatenate([probs, ref.extra.predict(classifier.predict_pixels)])
    if spec.check == "close":  # bf16
        _judge_bf16(verdict, gate_probs, ref.gate_probs("qat" if spec.source == "qat" else "float"), ref, limits)
    else:
        _judge_drop(verdict, gate_probs, ref, limits)
    return verdict


def _judge_drop(verdict: Verdict, gate_probs: np.ndarray, ref: Reference, limits: ExportConfig) -> None:
    """int8 and dynamic: fail when the accuracy drop against the float model is beyond max_drop
    with the gate's confidence; inconclusive when the images cannot tell."""
    labels, float_top1, file_top1 = ref.gate_labels(), ref.gate_probs("float").argmax(1), gate_probs.argmax(1)
    verdict.gate_agreement = float((file_top1 == float_top1).mean())
    evidence = accuracy_drop_gate(float_top1 == labels, file_top1 == labels, limits.max_drop, limits.gate_confidence)
    verdict.check, verdict.max_drop = "accuracy_drop", limits.max_drop
    verdict.decision, verdict.gate = evidence.decision, {**evidence.to_json(), "sources": ref.gate_sources()}
    if evidence.decision == "fail":
        verdict.passed, verdict.failure = False, "accuracy_drop"
        verdict.reason = (
            f"validation accuracy {verdict.accuracy:.2%} is {verdict.drop_points:.2f} points below the "
            f"float model's {verdict.float_accuracy:.2%} (--max-drop {limits.max_drop:g}); {evidence.summary()}"
        )
    elif evidence.decision == "inconclusive":
        verdict.note = f"cannot resolve --max-drop {limits.max_drop:g}: {evidence.summary()}"


def _judge_bf16(
    verdict: Verdict, gate_probs: np.ndarray, source: np.ndarray, ref: Reference, limits: ExportConfig
) -> None:
    """bf16 (8 bits of mantissa) answers the question int8 does: are its answers the float model's?
    Its accuracy drop is judged like int8's (max_drop), and its top-1 disagreement rate against
    1 - bf16_min_agreement as a binomial rate, on the gate's images whose float answer is decisive
    (top-1 ahead of the runner-up by more than bf16_tolerance), both with the gate's confidence.
    The probabilities' difference is recorded (max, 99th percentile, share over bf16_tolerance) but
    does not decide: a pretrained model's large logits move near-tie probabilities by more than
    0.05 in bf16 on one image in ten while keeping its answers (measured: docs/BENCHMARKS.md)."""
    per_image = np.abs(gate_probs - source).max(axis=1)
    verdict.max_abs_diff = float(per_image.max())
    verdict.p99_abs_diff = float(np.percentile(per_image, 99))
    verdict.tolerance = limits.bf16_tolerance
    _judge_drop(verdict, gate_probs, ref, limits)
    verdict.check = "p99_abs_diff"
    # agreement where the float answer is decisive: its top-1 beats the runner-up by more than the
    # tolerance bf16 may move a probability (a flip between two classes closer than that is a tie
    # broken the other way; on a weak model most images are such ties)
    ranked = np.sort(source, axis=1)
    decisive = ranked[:, -1] - ranked[:, -2] > limits.bf16_tolerance
    n = int(decisive.sum())
    flips = int((gate_probs.argmax(1) != source.argmax(1))[decisive].sum())
    disagree = rate_gate(
        flips, max(n, 1), round(1 - limits.bf16_min_agreement, 10), "disagreement_rate", limits.gate_confidence
    )
    verdict.agreement_gate = {
        **disagree.to_json(),
        "over_tolerance": int((per_image > limits.bf16_tolerance).sum()),
        "near_ties_left_out": int(len(per_image) - n),
    }
    if verdict.passed and disagree.decision == "fail":
        verdict.passed, verdict.failure, verdict.decision = False, "tolerance", "fail"
        verdict.reason = (
            f"top-1 agreement with the float model {1 - disagree.estimate:.2%} < bf16_min_agreement "
            f"{limits.bf16_min_agreement:.2%}; {disagree.summary()}"
        )
    elif verdict.passed and disagree.decision == "inconclusive":
        verdict.decision = "inconclusive"
        note = f"cannot resolve bf16_min_agreement {limits.bf16_min_agreement:g}: {disagree.summary()}"
        verdict.note = f"{verdict.note}; {note}" if verdict.note else note
    elif verdict.failure == "accuracy_drop":
        verdict.failure = "tolerance"  # bf16 failures are ToleranceExceeded, as before


def _check_precision(info: ArtifactInfo, content: bytes, int8_input: str) -> None:
    """Raise NotIntegerError (or ExportError) when the file is not what its precision says."""
    if info.format == "tflite":
        from edgeclf.export import tflite

        tflite.check_precision(content, info.precision, int8_input, info.float_layers)
    else:
        from edgeclf.export import onnx as onnx_export

        onnx_export.check_precision(content, info.precision, info.float_layers)
