"""Latency of MobileNetV2 at the sizes people deploy, every engine timed the same way, side by side.

For each (alpha, input size): the model with random weights (weights do not change latency; 10
classes), converted by edgeclf's own converters to TFLite fp32 / fp16 / int8 (PTQ, uint8 I/O) and
ONNX fp32 / int8 (QDQ, as `edgeclf export --int8` writes them), and the compiled Keras call. Each
(file, threads) is measured in a fresh process: load, 20 warm-up runs, then 100 timed runs per
batch size of the engine's call on a prepared input (bench's invoke_ms). Medians (p50) in ms.

    python tools/bench_latency_grid.py --out docs/benchmarks/latency_grid.json
    python tools/bench_latency_grid.py --grid 0.35x96 --runs 20     # a quick look

Writes OUT (JSON: machine fingerprint, method, per config and engine the p50 per threads and batch,
file sizes) and prints markdown tables: latency, int8/fp32 ratio per runtime, and the crossover.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edgeclf.training.models import mobilenet_v2_mmacs  # noqa: E402

DEFAULT_GRID = "0.35x96,0.35x160,0.35x224,0.5x224,0.75x224,1.0x96,1.0x160,1.0x224"
ENGINES = ("keras-fp32", "tflite-fp32", "tflite-fp16", "tflite-int8", "onnx-fp32", "onnx-int8")
# OpenVINO (when installed: pip install openvino) on edgeclf's ONNX files: the runtime an x86 user
# would pick instead. fp32 pinned to f32 (its default on a CPU with native bf16 is bf16), bf16 named
# as such, int8 = the QDQ file with the remaining float ops in f32.
OPENVINO = {
    "openvino-f32": ("onnx-fp32", "f32"),
    "openvino-bf16": ("onnx-fp32", "bf16"),
    "openvino-int8": ("onnx-int8", "f32"),
}


def engine_names() -> tuple[str, ...]:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return ENGINES
    return ENGINES + tuple(OPENVINO)


def build(alpha: float, size: int, folder: Path) -> dict[str, Path]:
    """Every engine's file for MobileNetV2 alpha x size, written into folder."""
    from edgeclf.core.config import ModelConfig
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite
    from edgeclf.training.models import build_classifier, save_model

    cfg = ModelConfig(name="mobilenet_v2", alpha=alpha, dropout=0.2, weights="none", scratch_bn_momentum=0.9)
    model = build_classifier(cfg, 10, size).model
    calibration = np.random.default_rng(0).integers(0, 256, (32, size, size, 3)).astype(np.uint8)
    files = {"keras-fp32": save_model(model, folder / "model.keras")}
    for name, precision in (("tflite-fp32", "fp32"), ("tflite-fp16", "fp16"), ("tflite-int8", "int8-ptq")):
        representative = tflite.representative_dataset(calibration) if precision.startswith("int8") else None
        files[name] = folder / f"{name}.tflite"
        files[name].write_bytes(tflite.convert(model, precision, representative, "uint8"))
    fp32 = onnx_export.convert_float(model, size, 17)
    files["onnx-fp32"] = folder / "onnx-fp32.onnx"
    files["onnx-fp32"].write_bytes(fp32)
    files["onnx-int8"] = folder / "onnx-int8.onnx"
    files["onnx-int8"].write_bytes(onnx_export.quantize_int8(fp32, calibration.astype(np.float32)))
    return files


def worker(job: dict) -> dict:
    """One engine, one thread count, in this (fresh) process: {batch: p50 ms}, load ms."""
    from edgeclf.measure.latency import time_calls

    path, threads, size = Path(job["file"]), job["threads"], job["size"]
    if job.get("openvino"):
        return openvino_worker(job)
    started = time.perf_counter()
    if path.suffix == ".keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from edgeclf.measure.keras_baseline import KerasClassifier

        clf = KerasClassifier(path, [], trace_batch=1)
        call, dtype = clf.run, np.float32
    else:
        from edgeclf.runtime.backends import open_backend

        backend = open_backend(path, threads)
        call = backend.run
        dtype = backend.input["dtype"] if path.suffix == ".tflite" else np.float32
    load_ms = (time.perf_counter() - started) * 1000
    result = {"load_ms": load_ms, "p50_ms": {}}
    for batch in job["batches"]:
        x = np.random.default_rng(batch).integers(0, 256, (batch, size, size, 3)).astype(dtype)
        samples = time_calls(call, x, job["warmup"], job["runs"], None)
        result["p50_ms"][str(batch)] = float(np.median(samples))
    return result


def openvino_worker(job: dict) -> dict:
    """OpenVINO on an ONNX file: the model reshaped to a static batch and compiled per batch size
    (its recommended practice), latency hint, the thread count and precision hint of the job."""
    import openvino as ov

    from edgeclf.measure.latency import time_calls

    core, size = ov.Core(), job["size"]
    config = {
        "INFERENCE_NUM_THREADS": job["threads"],
        "INFERENCE_PRECISION_HINT": job["openvino"],
        "PERFORMANCE_HINT": "LATENCY",
    }
    result = {"load_ms": None, "p50_ms": {}, "openvino": ov.__version__, "hint": job["openvino"]}
    for batch in job["batches"]:
        started = time.perf_counter()
        model = core.read_model(job["file"])
        model.reshape([batch, size, size, 3])
        request = core.compile_model(model, "CPU", config).create_infer_request()
        if result["load_ms"] is None:
            result["load_ms"] = (time.perf_counter() - started) * 1000
            result["precision_used"] = str(request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT"))
        x = np.random.default_rng(batch).integers(0, 256, (batch, size, size, 3)).astype(np.float32)

        def call(inputs, request=request):
            request.infer({0: inputs})
            return request.get_output_tensor(0).data

        samples = time_calls(call, x, job["warmup"], job["runs"], None)
        result["p50_ms"][str(batch)] = float(np.median(samples))
    return result


def measure(file: Path, threads: int, size: int, args, openvino: str | None = None) -> dict:
    job = {
        "file": str(file),
        "threads": threads,
        "size": size,
        "batches": args.batches,
        "warmup": args.warmup,
        "runs": args.runs,
        "openvino": openvino,
    }
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{file.name} at {threads} thread(s) failed: {proc.stderr.strip().splitlines()[-3:]}")
    return json.loads(lines[-1])


def tables(configs: list[dict], threads: list[int], names: tuple[str, ...]) -> str:
    out = []
    for t in threads:
        out += [
            f"\n### batch 1, {t} thread(s): p50 ms\n",
            "| alpha x px | MMACs | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for c in configs:
            cells = [f"{c['engines'][e][str(t)]['p50_ms']['1']:.2f}" for e in names]
            out.append(f"| {c['alpha']} x {c['size']} | {c['macs'] / 1e6:.0f} | " + " | ".join(cells) + " |")
        out += [
            f"\n### int8 / fp32 latency ratio, batch 1, {t} thread(s) (< 1: int8 faster)\n",
            "| alpha x px | LiteRT | ONNX Runtime | int8 vs compiled Keras |",
            "|---|---|---|---|",
        ]
        for c in configs:
            p = {e: c["engines"][e][str(t)]["p50_ms"]["1"] for e in ENGINES}
            out.append(
                f"| {c['alpha']} x {c['size']} | {p['tflite-int8'] / p['tflite-fp32']:.2f} | "
                f"{p['onnx-int8'] / p['onnx-fp32']:.2f} | "
                f"{p['keras-fp32'] / min(p['tflite-int8'], p['onnx-int8']):.1f}x faster |"
            )
    return "\n".join(out)


def crossover(configs: list[dict], threads: int) -> dict[str, float | None]:
    """Per runtime, the smallest MMACs from which int8 is faster than fp32 at every larger size
    measured (batch 1), or None when it never is."""
    result = {}
    for runtime in ("tflite", "onnx"):
        ordered = sorted(configs, key=lambda c: c["macs"])
        faster = [
            c["engines"][f"{runtime}-int8"][str(threads)]["p50_ms"]["1"]
            < c["engines"][f"{runtime}-fp32"][str(threads)]["p50_ms"]["1"]
            for c in ordered
        ]
        point = None
        for k in range(len(ordered)):
            if all(faster[k:]):
                point = ordered[k]["macs"] / 1e6
                break
        result[runtime] = point
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--grid", default=DEFAULT_GRID, help="alpha x size pairs, comma-separated")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8])
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    from edgeclf.runtime.machine import fingerprint

    threads = [int(t) for t in args.threads.split(",")]
    names = engine_names()
    configs = []
    for pair in args.grid.split(","):
        alpha, size = float(pair.split("x")[0]), int(pair.split("x")[1])
        with tempfile.TemporaryDirectory(prefix="edgeclf-grid-") as tmp:
            started = time.perf_counter()
            files = build(alpha, size, Path(tmp))
            convert_s = time.perf_counter() - started
            engines = {name: {str(t): measure(files[name], t, size, args) for t in threads} for name in ENGINES}
            for name in names[len(ENGINES) :]:
                source, hint = OPENVINO[name]
                engines[name] = {str(t): measure(files[source], t, size, args, hint) for t in threads}
            sizes = {name: files[name].stat().st_size for name in ENGINES}
        config = {
            "alpha": alpha,
            "size": size,
            "macs": mobilenet_v2_mmacs(alpha, size) * 1e6,
            "convert_seconds": round(convert_s, 1),
            "bytes": sizes,
            "engines": engines,
        }
        configs.append(config)
        p = {e: engines[e][str(threads[0])]["p50_ms"]["1"] for e in names}
        print(f"{alpha} x {size}: " + ", ".join(f"{e} {v:.2f}" for e, v in p.items()), flush=True)
    document = {
        "command": "python tools/bench_latency_grid.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "method": {
            "warmup": args.warmup,
            "runs": args.runs,
            "batches": args.batches,
            "threads": threads,
            "timed": "the engine's call on a prepared input (bench's invoke_ms), p50 of the timed runs",
            "models": "MobileNetV2, random weights, 10 classes; int8 = PTQ calibrated on 32 random images",
            "macs": "Sandler et al. 2018 at 224 px, scaled by the input area",
        },
        "configs": configs,
        "crossover_mmacs": {str(t): crossover(configs, t) for t in threads},
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(tables(configs, threads, names))
    print("\ncrossover (MMACs from which int8 is faster at batch 1):", document["crossover_mmacs"])


if __name__ == "__main__":
    main()
