"""Latency: how a call is timed, the statistics of its samples, and what bench says about the
results side by side (speed-ups against the float Keras model and against the fp32 file of the same
format on the same engine; a note where int8 is slower). bench_worker times, bench orchestrates;
neither holds the other's code."""

from __future__ import annotations

import time

import numpy as np

from edgeclf.measure.keras_baseline import KERAS_NAME
from edgeclf.runtime.timing import headline_batch

MAX_SAMPLES = 2000  # raw samples kept per batch size in bench.json
# Said beside a slower int8 file. The measurements behind it (which widths and sizes gain from int8 on
# which CPU, by tools/bench_latency_grid.py) are in docs/BENCHMARKS.md, not here: they hold for the
# machines measured, not the user's.
INT8_CROSSOVER = (
    "whether int8 pays off depends on this CPU's integer kernels and on the model's layer widths (narrow "
    'layers leave them idle); docs/BENCHMARKS.md ("The crossover") has the measured crossovers per engine'
)


def latency_stats(samples_ms: list[float], batch: int) -> dict:
    a = np.asarray(samples_ms)
    return {
        "batch": batch,
        "runs": int(len(a)),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "throughput_ips": float(batch * 1000 / a.mean()),
    }


def time_calls(fn, x, warmup: int, runs: int | None, seconds: float | None) -> list[float]:
    """Warm up, then time fn(x) runs times, or for `seconds` (at least 10 runs)."""
    for _ in range(warmup):
        fn(x)
    samples = []
    deadline = time.perf_counter() + (seconds or 0)
    while True:
        start = time.perf_counter_ns()
        fn(x)
        samples.append((time.perf_counter_ns() - start) / 1e6)
        if runs is not None and len(samples) >= runs:
            return samples
        if runs is None and time.perf_counter() >= deadline and len(samples) >= 10:
            return samples


def _p50(result: dict, batch: int = 1) -> float | None:
    return next((b["p50_ms"] for b in result["batches"] if b["batch"] == batch), None)


def _same_engine_fp32(results: dict, result: dict) -> str | None:
    """The name of the fp32 artifact of the same format on the same engine (onnx-fp32 for
    onnx-int8-ptq, openvino-fp32 for openvino-bf16), or None."""
    for name, other in results.items():
        same = (other["precision"], other["format"], other.get("engine_name"))
        if name != KERAS_NAME and same == ("fp32", result["format"], result.get("engine_name")):
            return name
    return None


def _repaired_file(results: dict, result: dict) -> str | None:
    """For a repaired (int8-mixed) result: the failed full-int8 artifact it replaced on the same
    engine, when it was measured too."""
    for name in result.get("repairs", []):
        other = results.get(name)
        if other and (other["format"], other.get("engine_name")) == (result["format"], result.get("engine_name")):
            return name
    return None


def speedups(results: dict) -> None:
    base = _p50(results[KERAS_NAME]) if KERAS_NAME in results else None
    for name, result in results.items():
        p50 = _p50(result)
        fp32 = _same_engine_fp32(results, result) if name != KERAS_NAME else None
        result["speedup_vs_keras"] = base / p50 if base and p50 else None
        result["speedup_vs_runtime_fp32"] = _p50(results[fp32]) / p50 if fp32 and p50 else None
        result["runtime_fp32"] = fp32
        full = _repaired_file(results, result)  # a repaired file: its latency against the full-int8 file's
        result["vs_full_int8"] = p50 / _p50(results[full]) if full and p50 and _p50(results[full]) else None


def notes(results: dict) -> list[str]:
    notes = []
    keras = results.get(KERAS_NAME, {})
    if keras.get("predict_on_batch"):
        slow, fast = keras["predict_on_batch"][0], headline_batch(keras)
        notes.append(
            f"{KERAS_NAME} is timed as a compiled call (p50 {fast['p50_ms']:.3f} ms, batch {fast['batch']}); "
            f"through Keras' predict_on_batch the same model takes {slow['p50_ms']:.3f} ms "
            f"({slow['p50_ms'] / fast['p50_ms']:.2f}x): that path is not used for any ratio"
        )
    for name, result in results.items():
        if (
            result["precision"].startswith("int8")
            and result["speedup_vs_runtime_fp32"]
            and result["speedup_vs_runtime_fp32"] < 1
        ):
            fp32 = result["runtime_fp32"]
            notes.append(
                f"{name} is SLOWER than {fp32} on this CPU "
                f"(p50 {_p50(result):.3f} ms vs {_p50(results[fp32]):.3f} ms, batch 1): " + INT8_CROSSOVER
            )
    return notes
