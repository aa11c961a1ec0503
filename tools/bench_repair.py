"""What a repair costs and what it saves, on a run exported with `edgeclf export RUN --int8` whose
int8 files failed and were repaired (edgeclf.export.repair), with NNCF's accuracy control as the
anchor on the same float ONNX model.

For each int8-mixed artifact: the drop of the files it repairs and its own (on the gate's images,
from artifacts.json), the layers kept in float (all, and the weighted ones), their share of the
MACs, and the repair's time (its calibrate, rank, convert and validate steps in artifacts.json).
Latency, batch 1: the runtime's fp32 file, the failed full-int8 file and the repaired file, each
through edgeclf's Classifier.predict_pixels on one image (input conversion, invoke, output),
measured round-robin ROUNDS times (RUNS calls after 20 warm-up calls each) in this one process; the
median of the rounds' medians. Anchor: nncf.quantize_with_accuracy_control on the run's float ONNX
with the export's calibration images, validated on the gate's images (the validation split topped
up as the export's gate does) with top-1 accuracy, max_drop = export.max_drop points, run on ONNX
Runtime: its layers kept in float (weighted ops whose weights stay float) and its wall time.

    python tools/bench_repair.py RUN --out docs/benchmarks/repair_NAME.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edgeclf.core.run_directory import ARTIFACTS, Run  # noqa: E402
from edgeclf.data.decoded import DecodedSplit  # noqa: E402
from edgeclf.export.onnx_repair import WEIGHTED  # noqa: E402
from edgeclf.measure.latency import time_calls  # noqa: E402
from edgeclf.runtime import Classifier, read_artifacts  # noqa: E402
from edgeclf.runtime.artifact import artifact_file  # noqa: E402
from edgeclf.runtime.backends.onnxruntime_backend import KEEP_FLOAT  # noqa: E402
from edgeclf.runtime.machine import fingerprint  # noqa: E402

FP32 = {"tflite": "tflite-fp32", "onnx": "onnx-fp32", "openvino": "openvino-fp32"}


def repairs(run: Run) -> list[dict]:
    """Each int8-mixed artifact with the files it repairs, from artifacts.json."""
    index = run.export_dir / ARTIFACTS
    entries = {a.name: a for a in read_artifacts(index)}
    timings = json.loads(index.read_text())["timings"]
    rows = []
    for a in entries.values():
        if not a.precision.is_mixed:
            continue
        record = a.repair_record
        group = a.engine or a.format
        repaired = [entries[n] for n in record["repairs"] if n in entries and (entries[n].engine or "onnx") == group]
        repaired = repaired or [entries[n] for n in record["repairs"] if n in entries][:1]
        layers = record["float_layers"]
        rows.append(
            {
                "artifact": a.name,
                "runtime": group,
                "status": a.status,
                "drop_points": a.validation.get("gate", {}).get("estimate"),
                "gate_images": a.validation.get("gate", {}).get("images"),
                "repairs": {r.name: r.validation.get("gate", {}).get("estimate") for r in repaired},
                "float_layers": len(layers),
                "float_weighted_layers": sum(1 for x in layers if x["macs"]),
                "float_layer_names": [f"{x['op']} {x['name']}" for x in layers],
                "float_macs_share": record["float_macs_share"],
                "tried": record.get("tried"),
                "repair_seconds": round(sum(s for k, s in timings.items() if k.startswith(f"{a.name}: ")), 2),
                "files": {"fp32": FP32[group], "int8": repaired[0].name if repaired else None, "mixed": a.name},
            }
        )
    return rows


def latencies(run: Run, rows: list[dict], rounds: int, runs: int, threads: int) -> dict[str, float]:
    """Median batch-1 milliseconds of every file the rows name, measured round-robin."""
    index = run.export_dir / ARTIFACTS
    entries = {a.name: a for a in read_artifacts(index)}
    names = sorted({n for row in rows for n in row["files"].values() if n})
    pixels = next(DecodedSplit(run, "val").batches())[0][:1]
    classifiers = {n: Classifier(entries[n], artifact_file(index, entries[n]), threads=threads) for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:
            times = time_calls(lambda x, c=classifiers[n]: c.predict_pixels(x, batch_size=1), pixels, 20, runs, None)
            samples[n].append(statistics.median(times))
    return {n: round(statistics.median(s), 4) for n, s in samples.items()}


def gate_images(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibration images, the gate's images, their labels) as the export chose them."""
    cfg = run.config()
    calibration = run.calibration_images(cfg.export.calibration_images, cfg.seed).astype(np.float32)
    val = DecodedSplit(run, "val")
    pixels, labels = [], []
    for batch, batch_labels in val.batches():
        pixels.append(batch)
        labels.append(batch_labels)
    extra = max(0, cfg.export.gate_images - len(val))
    positions, _ = run.gate_positions(extra, cfg.seed, cfg.export.calibration_images)
    if positions:
        for batch, batch_labels in DecodedSplit(run, "train", positions=positions).batches():
            pixels.append(batch)
            labels.append(batch_labels)
    return calibration, np.concatenate(pixels).astype(np.float32), np.concatenate(labels)


def top1(model, images) -> np.ndarray:
    """An ONNX model's top-1 answers, on ONNX Runtime as edgeclf runs it, one image at a time."""
    import onnxruntime as ort

    options = {"providers": ["CPUExecutionProvider"], "disabled_optimizers": KEEP_FLOAT}
    session = ort.InferenceSession(model.SerializeToString(), **options)
    return np.array([int(session.run(None, {"image": x[None]})[0].argmax()) for x in images])


def accuracy(model, items) -> float:
    """Top-1 accuracy over (image, label) items: NNCF's validation_fn (it passes the raw items)."""
    items = list(items)
    return float(np.mean(top1(model, [x for x, _ in items]) == np.array([int(y) for _, y in items])))


def w8a16_anchor(run: Run) -> dict:
    """The float ONNX with int16 activations and 8-bit per-channel weights (onnxruntime's QDQ), its
    drop and agreement on the gate's images: int16 activations as an accuracy option."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgeclf.export import onnx as onnx_export

    calibration, images, labels = gate_images(run)
    model = onnx.load(str(run.export_dir / "model_fp32.onnx"))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = onnx_export.prepare_for_quantization(model.SerializeToString(), Path(tmp))
        out = Path(tmp) / "w8a16.onnx"
        batches = iter({"image": image[None]} for image in calibration)
        reader = type("Reader", (), {"get_next": lambda self: next(batches, None)})()
        quantize_static(
            str(prepared),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt16,
        )
        quantized = onnx.load(str(out))
    answers = {name: top1(m, images) for name, m in (("float", model), ("w8a16", quantized))}
    return {
        "images": len(labels),
        "drop_points": round(float(np.mean(answers["float"] == labels) - np.mean(answers["w8a16"] == labels)) * 100, 4),
        "agreement_with_float": round(float(np.mean(answers["float"] == answers["w8a16"])), 4),
    }


def nncf_anchor(run: Run) -> dict:
    """nncf.quantize_with_accuracy_control on the float ONNX, on the export's images."""
    import nncf
    import onnx

    cfg = run.config()
    calibration, images, labels = gate_images(run)
    model = onnx.load(str(run.export_dir / "model_fp32.onnx"))
    started = time.perf_counter()
    quantized = nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(list(calibration), lambda x: {"image": x[None]}),
        nncf.Dataset(list(zip(images, labels, strict=True)), lambda item: {"image": item[0][None]}),
        validation_fn=accuracy,
        max_drop=cfg.export.max_drop / 100,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(calibration),
    )
    seconds = time.perf_counter() - started
    items = list(zip(images, labels, strict=True))
    float_acc, ac_acc = accuracy(model, items), accuracy(quantized, items)
    graph = quantized.graph
    producer = {out: node for node in graph.node for out in node.output}
    weighted = [n for n in graph.node if n.op_type in WEIGHTED]
    float_weighted = [n.name for n in weighted if (producer.get(n.input[1]) or n).op_type != "DequantizeLinear"]
    return {
        "seconds": round(seconds, 2),
        "images": len(labels),
        "drop_points": round((float_acc - ac_acc) * 100, 4),
        "float_weighted_layers": len(float_weighted),
        "float_weighted_layer_names": float_weighted,
        "weighted_layers": len(weighted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-nncf", action="store_true", help="skip NNCF's accuracy control")
    parser.add_argument("--w8a16", action="store_true", help="also int16 activations on ONNX Runtime (accuracy)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    run = Run.open(args.run)
    rows = repairs(run)
    ms = latencies(run, rows, args.rounds, args.runs, args.threads)
    for row in rows:
        row["latency_ms"] = {k: ms.get(n) for k, n in row["files"].items()}
    result = {
        "machine": fingerprint(args.threads, "cpu"),
        "command": "python tools/bench_repair.py " + " ".join(sys.argv[1:]),
        "span": "Classifier.predict_pixels on one image (input conversion, invoke, output), batch 1",
        "repairs": rows,
        "nncf_accuracy_control": None if args.no_nncf else nncf_anchor(run),
        "w8a16": w8a16_anchor(run) if args.w8a16 else None,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
