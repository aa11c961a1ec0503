"""Step 2 of an export: run an artifact's file on the validation split and compare it with the
Keras model it came from, returning a typed verdict (edgeclf.export.errors names each failure).

The checks, in order: the file is what its precision says (no float tensors in an int8 TFLite,
int8 weights in an int8 ONNX, the I/O dtypes described); the output has one probability per class
for every image; then, by the format table's `check` column, either the probabilities are within a
tolerance of the source model's ("close": fp32 and fp16, each with its own tolerance on the largest
difference), or the accuracy falls at most max_drop points below the float model's ("accuracy":
dynamic-range and int8). bf16 ("close" too) has a check of its own: with 8 bits of mantissa, a
few near-tie images of a large split move by several hundredths (a 93 % Fashion-MNIST model: max
0.059 over 6,000 validation images, 99th percentile 0.019, agreement 99.88 %), so its tolerance
bounds the 99th percentile of the per-image difference, and it needs bf16_min_agreement top-1
agreement with the float model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeclf.config import ExportConfig
from edgeclf.decoded import DecodedSplit
from edgeclf.export.errors import (
    AccuracyDropTooLarge,
    ExportError,
    NotIntegerError,
    OutputMismatch,
    ToleranceExceeded,
    ValidationFailed,
)
from edgeclf.export.formats import spec_named
from edgeclf.images import normalize
from edgeclf.keras_baseline import compiled_predict
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
    """The validation split (decoded once, streamed in batches: edgeclf.decoded) and the float
    model's predictions on it (and the QAT model's, when the run has one): what every artifact is
    compared with. Close it (or use it in a with block) to drop the decoded pixels."""

    split: DecodedSplit
    float_probs: np.ndarray
    qat_probs: np.ndarray | None = None

    @classmethod
    def compute(cls, run, model, qat_model=None) -> Reference:
        """Predict the run's validation split with the float model (and the QAT model)."""
        split = DecodedSplit(run, "val")
        # a compiled call over 32 images at a time inside each decoded batch: memory stays one chunk's
        # activations however large the split (Keras' model.predict per batch grew it by half at 10 x N)
        float_probs = split.predict(compiled_predict(model))  # uint8 pixels: the model normalizes
        qat_probs = None
        if qat_model is not None:
            norm = run.metadata["normalization"]
            run_qat = compiled_predict(qat_model)
            qat_probs = split.predict(lambda pixels: run_qat(normalize(pixels, norm)))
        return cls(split, np.asarray(float_probs), None if qat_probs is None else np.asarray(qat_probs))

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels

    def close(self) -> None:
        self.split.close()

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
    probs = ref.split.predict(Classifier(info, Path(file)).predict_pixels)
    if probs.shape != ref.float_probs.shape:
        return Verdict(False, "output", len(ref.labels), failure="output",
                       reason=f"output shape {probs.shape}, expected {ref.float_probs.shape}")  # fmt: skip
    top1 = probs.argmax(1)
    accuracy = float((top1 == ref.labels).mean())
    verdict = Verdict(
        True, "", len(ref.labels), accuracy=accuracy, float_accuracy=ref.float_accuracy,
        drop_points=round((ref.float_accuracy - accuracy) * 100, 4),
        agreement_with_float=float((top1 == ref.float_probs.argmax(1)).mean()),
    )  # fmt: skip
    source = ref.qat_probs if spec.source == "qat" else ref.float_probs
    if spec.source == "qat" and source is not None:
        verdict.agreement_with_source = float((top1 == source.argmax(1)).mean())
    if spec.check == "close":
        per_image = np.abs(probs - source).max(axis=1)
        verdict.max_abs_diff = float(per_image.max())
        if spec.precision == "bf16":
            _judge_bf16(verdict, per_image, limits)
        else:
            tolerance = limits.fp16_tolerance if spec.precision == "fp16" else limits.fp32_tolerance
            verdict.check, verdict.tolerance = "max_abs_diff", tolerance
            if verdict.max_abs_diff > tolerance:
                verdict.passed, verdict.failure = False, "tolerance"
                verdict.reason = f"max |p - p_keras| = {verdict.max_abs_diff:.3g} > tolerance {tolerance:g}"
    else:
        verdict.check, verdict.max_drop = "accuracy_drop", limits.max_drop
        if verdict.drop_points > limits.max_drop:
            verdict.passed, verdict.failure = False, "accuracy_drop"
            verdict.reason = (
                f"validation accuracy {accuracy:.2%} is {verdict.drop_points:.2f} points below the "
                f"float model's {ref.float_accuracy:.2%} (--max-drop {limits.max_drop:g})"
            )
    return verdict


def _judge_bf16(verdict: Verdict, per_image: np.ndarray, limits: ExportConfig) -> None:
    """bf16: the 99th percentile of the per-image difference within bf16_tolerance, and top-1
    agreement with the float model at least bf16_min_agreement."""
    verdict.check, verdict.tolerance = "p99_abs_diff", limits.bf16_tolerance
    verdict.p99_abs_diff = float(np.percentile(per_image, 99))
    if verdict.p99_abs_diff > limits.bf16_tolerance:
        verdict.passed, verdict.failure = False, "tolerance"
        verdict.reason = (
            f"99th percentile of max |p - p_keras| per image = {verdict.p99_abs_diff:.3g} > "
            f"bf16_tolerance {limits.bf16_tolerance:g}"
        )
    elif verdict.agreement_with_float < limits.bf16_min_agreement:
        verdict.passed, verdict.failure = False, "tolerance"
        verdict.reason = (
            f"top-1 agreement with the float model {verdict.agreement_with_float:.2%} < "
            f"bf16_min_agreement {limits.bf16_min_agreement:.2%}"
        )


def _check_precision(info: ArtifactInfo, content: bytes, int8_input: str) -> None:
    """Raise NotIntegerError (or ExportError) when the file is not what its precision says."""
    if info.format == "tflite":
        from edgeclf.export import tflite

        tflite.check_precision(content, info.precision, int8_input)
    else:
        from edgeclf.export import onnx as onnx_export

        onnx_export.check_precision(content, info.precision)
