"""Repair of an int8 artifact that failed its accuracy gate (export.repair): keep its most
error-prone layers in float, the fewest that pass the gate, as an `int8-mixed` artifact of its own.

How, for each runtime's format (the format table's `repairs` rows):

1. rank the layers by quantization error with the runtime's own debugger: TensorFlow's
   QuantizationDebugger for TFLite (edgeclf.export.tflite_repair), ONNX Runtime's QDQ debugger for
   ONNX, whose file also runs on OpenVINO (edgeclf.export.onnx_repair);
2. keep the first k of that ranking in float (the converter's selective quantization:
   `denylisted_nodes`, `nodes_to_exclude`), validate the file like every other artifact, and find
   the smallest k that holds: k = 1, 2, 4, ... up to export.repair_max_layers, then bisection
   between the last k that failed and the first that held. Bisection assumes that more float
   layers never make the file worse, which holds for a ranking by error but is not guaranteed;
   every k tried is recorded with its drop, so a reader can see the curve.

"Holds" is stricter than passing the gate: the gate does not fail, and the measured drop on the
gate's images is within export.max_drop (a file whose interval merely straddles the limit is not
taken as repaired). The artifact records the layers kept in float (name, op type, MACs), the share
of the model's MACs left in float, the ranking's metric and every k tried; its precision check
verifies that exactly those layers are float in the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeclf.core.config import ExportConfig
from edgeclf.export.convert import Sources, write_artifact
from edgeclf.export.errors import ExportError
from edgeclf.export.formats import ArtifactSpec
from edgeclf.export.validate import Reference, Verdict, validate
from edgeclf.runtime.artifact import ArtifactInfo

log = logging.getLogger(__name__)


def fewest_float_layers(limit: int, holds: Callable[[int], bool]) -> int | None:
    """The smallest k in 1..limit for which holds(k), found by doubling then bisection (holds(0),
    the full int8 file, is known to fail); None when holds(limit) fails too."""
    low, k = 0, 1
    while not holds(k):
        low = k
        if k >= limit:
            return None
        k = min(2 * k, limit)
    high = k
    while high - low > 1:
        mid = (low + high) // 2
        if holds(mid):
            high = mid
        else:
            low = mid
    return high


def holds(verdict: Verdict, max_drop: float) -> bool:
    """The repair's stopping rule: the gate does not fail and its measured drop is within max_drop."""
    return verdict.passed and verdict.gate is not None and verdict.gate["estimate"] <= max_drop


def repair_artifact(
    spec: ArtifactSpec,
    failed: list[ArtifactInfo],
    sources: Sources,
    cfg: ExportConfig,
    reference: Reference,
    dest: Path,
    timings,
) -> ArtifactInfo:
    """Make spec (an int8-mixed row) for the failed artifacts it repairs, write the chosen file at
    dest and return its entry, validated (status failed when no k up to repair_max_layers holds)."""
    with timings.step(f"{spec.name}: calibrate"):
        quantizer = _quantizer(spec, failed, sources, cfg)
    attempts: dict[int, tuple[Path, ArtifactInfo, Verdict]] = {}
    try:
        with timings.step(f"{spec.name}: rank layers"):
            try:
                layers = quantizer.rank(cfg.repair_debug_images)
            except Exception as exc:  # the debuggers raise many types: name the step, keep one line
                raise ExportError(
                    f"{spec.name}: ranking the layers with the runtime's quantization debugger failed: "
                    f"{' '.join(str(exc).split())[:300]}"
                ) from exc
        total_macs = sum(layer.macs for layer in layers)

        def attempt(k: int) -> bool:
            kept = layers[:k]
            file = dest.with_name(f"{dest.stem}-{k}{dest.suffix}")
            with timings.step(f"{spec.name}: convert"):
                content = quantizer.build([layer.name for layer in kept])
            float_macs = sum(layer.macs for layer in kept)
            record = {
                "repairs": [a.name for a in failed],
                "metric": quantizer.metric,
                "float_layers": [layer.to_json() for layer in kept],
                "float_macs": float_macs,
                "total_macs": total_macs,
                "float_macs_share": round(float_macs / total_macs, 6) if total_macs else 0.0,
            }
            info = write_artifact(spec, sources.run, content, "pixels", file, quantizer.produced_by, record)
            with timings.step(f"{spec.name}: validate"):
                verdict = validate(info, file, reference, cfg)
            attempts[k] = (file, info, verdict)
            log.info(f"  {spec.name}: {k} layer(s) in float: drop {_drop(verdict)}, {verdict.decision or 'failed'}")
            return holds(verdict, cfg.max_drop)

        limit = min(cfg.repair_max_layers, len(layers))
        if not limit:
            raise ExportError(f"{spec.name}: the int8 file has no quantized layer to keep in float")
        k = fewest_float_layers(limit, attempt)
        file, info, verdict = attempts[limit if k is None else k]
        os.replace(file, dest)
        info.repair_record["layers_ranked"] = len(layers)
        info.repair_record["tried"] = [
            {"float_layers": n, "drop_points": _gate_drop(v), "decision": v.decision, "holds": holds(v, cfg.max_drop)}
            for n, (_, _, v) in sorted(attempts.items())
        ]
        info.validation, info.status = verdict.to_json(), "ok" if k is not None else "failed"
        if k is None:
            info.validation.update(
                passed=False,
                failure=verdict.failure or "accuracy_drop",
                reason=f"repair: {limit} layer(s) kept in float still do not hold the gate "
                f"(drop {_drop(verdict)}, --max-drop {cfg.max_drop:g}); raise export.repair_max_layers or use QAT",
            )
        return info
    finally:
        for file, _, _ in attempts.values():
            file.unlink(missing_ok=True)
        quantizer.close()


def _quantizer(spec: ArtifactSpec, failed: list[ArtifactInfo], sources: Sources, cfg: ExportConfig):
    """The runtime's quantizer for spec, set up from the float model and the calibration images."""
    if spec.format == "tflite":
        from edgeclf.export import tflite
        from edgeclf.export.tflite_repair import TfliteQuantizer

        representative = tflite.representative_dataset(sources.calibration)
        converter = tflite.full_integer_converter(sources.tflite_source("float"), representative, cfg.int8_input)
        return TfliteQuantizer(converter, representative)
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export.onnx_repair import OnnxQuantizer

    float_onnx = sources.float_onnx or onnx_export.convert_float(sources.model, sources.run.image_size, cfg.onnx_opset)
    # the weight width of the file repaired (7-bit when it had it, or when the setting says so)
    reduce_range = any("7-bit" in a.produced_by for a in failed) or cfg.onnx_reduce_range == "true"
    return OnnxQuantizer(float_onnx, sources.calibration.astype(np.float32), reduce_range)


def _gate_drop(verdict: Verdict) -> float | None:
    return None if verdict.gate is None else round(verdict.gate["estimate"], 4)


def _drop(verdict: Verdict) -> str:
    drop = _gate_drop(verdict)
    return "not measured" if drop is None else f"{drop:.2f} points"
