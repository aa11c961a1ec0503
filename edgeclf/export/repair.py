"""Repair of an int8 artifact that failed its accuracy gate (export.repair): keep its most
error-prone layers in float, the fewest that pass the gate, as an `int8-mixed` artifact of its own.

How, for each runtime's format (the format table's `repairs` rows):

1. rank the layers (export.repair_ranking): by default each weighted layer by what keeping it
   alone in float does to the whole file's answers on a few calibration images, run by the runtime
   itself (leave-one-out, one conversion per layer); or, in one pass, by the runtime's own
   debugger's per-layer error: TensorFlow's QuantizationDebugger for TFLite
   (edgeclf.export.tflite_repair), ONNX Runtime's QDQ debugger for ONNX, whose file also runs on
   OpenVINO (edgeclf.export.onnx_repair). The debuggers' statistics are local: they missed the layer
   that mattered on a pretrained MobileNetV2 (docs/QUANTIZATION.md);
2. keep the first k of that ranking in float (the converter's selective quantization:
   `denylisted_nodes`, `nodes_to_exclude`), validate the file like every other artifact, and find
   the smallest k that holds: k = 1, 2, 4, ... up to export.repair_max_layers, then bisection
   between the last k that failed and the first that held. Bisection assumes that more float
   layers never make the file worse, which holds for a ranking by error but is not guaranteed;
3. then each of those k layers is dropped in turn (the last ranked first) where the others hold
   without it: no layer left in float can be quantized alone. Every set tried is recorded with
   its drop, so a reader can see the curve.

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
from edgeclf.export.layers import Layer
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


def fewest_layers_kept(limit: int, holds: Callable[[tuple[int, ...]], bool]) -> tuple[tuple[int, ...], bool]:
    """(the ranks to keep in float, whether they hold): the shortest prefix of the ranking that
    holds (fewest_float_layers), then each of its layers dropped, the last ranked first, where the
    rest hold without it; (the first `limit` ranks, False) when no prefix holds."""
    known: dict[tuple[int, ...], bool] = {}

    def test(ranks: tuple[int, ...]) -> bool:  # each set tried once
        if ranks not in known:
            known[ranks] = holds(ranks)
        return known[ranks]

    k = fewest_float_layers(limit, lambda n: test(tuple(range(n))))
    if k is None:
        return tuple(range(limit)), False
    chosen = tuple(range(k))
    for rank in reversed(chosen if k > 1 else ()):
        fewer = tuple(r for r in chosen if r != rank)
        if test(fewer):
            chosen = fewer
    return chosen, True


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
    attempts: dict[tuple[int, ...], tuple[Path, ArtifactInfo, Verdict]] = {}
    try:
        with timings.step(f"{spec.name}: rank layers"):
            layers, metric = _rank(spec, quantizer, sources, cfg, dest)
        total_macs = sum(layer.macs for layer in layers)

        def attempt(ranks: tuple[int, ...]) -> bool:
            """Keep the layers of these ranks in float, validate; whether it holds."""
            kept = [layers[r] for r in ranks]
            file = dest.with_name(f"{dest.stem}-{len(attempts)}{dest.suffix}")
            with timings.step(f"{spec.name}: convert"):
                content = quantizer.build([layer.name for layer in kept])
            float_macs = sum(layer.macs for layer in kept)
            record = {
                "repairs": [a.name for a in failed],
                "ranking": cfg.repair_ranking,
                "metric": metric,
                "float_layers": [layer.to_json() for layer in kept],
                "float_macs": float_macs,
                "total_macs": total_macs,
                "float_macs_share": round(float_macs / total_macs, 6) if total_macs else 0.0,
            }
            info = write_artifact(spec, sources.run, content, "pixels", file, quantizer.produced_by, record)
            with timings.step(f"{spec.name}: validate"):
                verdict = validate(info, file, reference, cfg)
            attempts[ranks] = (file, info, verdict)
            log.info(
                f"  {spec.name}: {len(kept)} layer(s) in float (ranks {_ranks(ranks)}): drop {_drop(verdict)}, "
                f"{verdict.decision or 'failed'}"
            )
            return holds(verdict, cfg.max_drop)

        limit = min(cfg.repair_max_layers, len(layers))
        if not limit:
            raise ExportError(f"{spec.name}: the int8 file has no quantized layer to keep in float")
        chosen, found = fewest_layers_kept(limit, attempt)
        file, info, verdict = attempts[chosen]
        os.replace(file, dest)
        info.repair_record["layers_ranked"] = len(layers)
        info.repair_record["tried"] = [
            {"ranks": list(r), "drop_points": _gate_drop(v), "decision": v.decision, "holds": holds(v, cfg.max_drop)}
            for r, (_, _, v) in attempts.items()
        ]
        info.validation, info.status = verdict.to_json(), "ok" if found else "failed"
        if not found:
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


OUTPUT_METRIC = (
    "leave-one-out: how much closer the file's probabilities come to the float model's with the layer alone in "
    "float (mean total variation distance on export.repair_debug_images calibration images, full int8 less "
    "one layer in float)"
)


def _rank(spec: ArtifactSpec, quantizer, sources: Sources, cfg: ExportConfig, dest: Path) -> tuple[list[Layer], str]:
    """The layers, the most worth keeping in float first, and how they were ranked (export.repair_ranking)."""
    try:
        if cfg.repair_ranking == "debugger":
            return quantizer.rank(cfg.repair_debug_images), quantizer.metric
        return _rank_by_output(spec, quantizer, sources, cfg, dest), OUTPUT_METRIC
    except ExportError:
        raise
    except Exception as exc:  # the converters and debuggers raise many types: name the step, keep one line
        raise ExportError(f"{spec.name}: ranking the layers failed: {' '.join(str(exc).split())[:300]}") from exc


def _rank_by_output(spec: ArtifactSpec, quantizer, sources: Sources, cfg: ExportConfig, dest: Path) -> list[Layer]:
    """Each weighted layer scored by what keeping it alone in float does to the whole file's answers:
    the runtime runs every candidate file on the debug images, as validation will. Costs one
    conversion and one pass over the debug images per layer; it finds what the debuggers' local
    statistics miss (docs/QUANTIZATION.md: the layer that repairs a pretrained MobileNetV2 ranked
    25th of 68 by ONNX Runtime's debugger statistics)."""
    from edgeclf.export.convert import describe
    from edgeclf.measure.keras_baseline import compiled_predict
    from edgeclf.runtime.classifier import Classifier

    pixels = np.asarray(sources.calibration[: cfg.repair_debug_images], np.uint8)
    reference = np.asarray(compiled_predict(sources.model)(pixels.astype(np.float32)))
    file = dest.with_name(f"{dest.stem}-ranking{dest.suffix}")
    info = None
    try:

        def distance(float_layers: list[str]) -> float:
            nonlocal info
            content = quantizer.build(float_layers)
            file.write_bytes(content)
            info = info or describe(spec, sources.run, content, "pixels")  # the same I/O in every candidate
            probs = Classifier(info, file).predict_pixels(pixels)
            return float(np.abs(probs - reference).sum(axis=1).mean() / 2)

        full = distance([])
        layers = quantizer.layers()
        for layer in layers:
            layer.error = full - distance([layer.name])
        return sorted(layers, key=lambda layer: -layer.error)
    finally:
        file.unlink(missing_ok=True)


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


def _ranks(ranks: tuple[int, ...]) -> str:
    """1-based ranks, a run of them shortened: 1-8, 10."""
    return (
        f"1-{len(ranks)}"
        if ranks == tuple(range(len(ranks))) and len(ranks) > 2
        else ", ".join(str(r + 1) for r in ranks)
    )


def _gate_drop(verdict: Verdict) -> float | None:
    return None if verdict.gate is None else round(verdict.gate["estimate"], 4)


def _drop(verdict: Verdict) -> str:
    drop = _gate_drop(verdict)
    return "not measured" if drop is None else f"{drop:.2f} points"
