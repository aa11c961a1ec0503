"""What makes int8 faster on this CPU: quantization formats and engine options, side by side.

One MobileNetV2 (random weights, 10 classes; weights do not change latency) at ALPHA x SIZE,
converted once per variant:

- ONNX Runtime: edgeclf's file (QDQ, per-channel int8 weights with reduce_range, uint8
  activations) against QDQ without reduce_range, per-tensor weights, int8 activations (S8S8), the
  QOperator format (QLinearConv), and session options (graph optimisation level, thread spinning).
- LiteRT: edgeclf's file (PTQ, per-channel, uint8 I/O) on XNNPACK against LiteRT's built-in
  kernels without XNNPACK (ruy), per-tensor weights, int8 I/O, and XNNPACK's "latest features".
- Issue 24: hybrids with the depthwise layers kept in float (the repair's selective quantization:
  denylisted_nodes, nodes_to_exclude) in each runtime, w8a16 (int16 activations) in LiteRT and
  ONNX Runtime, symmetric s8s8 QDQ (ONNX Runtime's ConvSym conditions), and OpenVINO running
  ONNX Runtime's QDQ file against NNCF's file.

Every variant runs in a fresh process: load, 20 warm-up runs, then RUNS timed calls of the engine
on a prepared batch-1 input (bench's invoke_ms). The variants are measured round-robin ROUNDS times
and each variant's p50s are reduced to their median, so that a noisy minute hurts every variant
alike. Ratios are against the fp32 file of the same engine measured in the same rounds.

    python tools/bench_int8_options.py --out docs/benchmarks/int8_options.json
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

from edgeclf.runtime.backends.onnxruntime_backend import KEEP_FLOAT  # noqa: E402

# name -> (file key, engine options). File keys are built by build().
VARIANTS = {
    "ort fp32": ("onnx-fp32", {}),
    "ort fp32, no spinning": ("onnx-fp32", {"spinning": False}),
    "ort int8 QDQ u8s8 per-channel reduce_range (edgeclf)": ("onnx-int8", {}),
    "ort int8 QDQ u8s8 per-channel": ("onnx-int8-norr", {}),
    "ort int8 QDQ u8s8 per-tensor": ("onnx-int8-tensor", {}),
    "ort int8 QDQ s8s8 per-channel": ("onnx-int8-s8s8", {}),
    "ort int8 QOperator u8s8 per-channel": ("onnx-int8-qop", {}),
    "ort int8 (edgeclf), graph opt EXTENDED": ("onnx-int8", {"level": "extended"}),
    "ort int8 (edgeclf), no spinning": ("onnx-int8", {"spinning": False}),
    "litert fp32 XNNPACK": ("tflite-fp32", {}),
    "litert fp32 built-in kernels": ("tflite-fp32", {"resolver": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}),
    "litert int8 XNNPACK (edgeclf)": ("tflite-int8", {}),
    "litert int8 XNNPACK latest features": ("tflite-int8", {"latest": True}),
    "litert int8 built-in kernels (ruy)": ("tflite-int8", {"resolver": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}),
    "litert int8 per-tensor": ("tflite-int8-tensor", {}),
    "litert int8, int8 I/O": ("tflite-int8-io8", {}),
    # issue 24: hybrids from the repair's selective quantization, symmetric s8s8 for ConvSym, w8a16,
    # and OpenVINO on its own quantizer's file (NNCF) against ONNX Runtime's QDQ file
    "litert int8, depthwise in float (hybrid)": ("tflite-int8-dwfloat", {}),
    "litert w8a16 (int16 activations)": ("tflite-w8a16", {}),
    "ort int8, depthwise in float (hybrid)": ("onnx-int8-dwfloat", {}),
    "ort int8 QDQ s8s8 symmetric (ConvSym)": ("onnx-int8-sym", {}),
    "ort w8a16 QDQ (int16 activations)": ("onnx-w8a16", {}),
    "openvino fp32": ("onnx-fp32", {"engine": "openvino"}),
    "openvino int8 ORT QDQ (edgeclf's file)": ("onnx-int8", {"engine": "openvino"}),
    "openvino int8 NNCF": ("onnx-int8-nncf", {"engine": "openvino"}),
    "openvino int8, depthwise in float (hybrid)": ("onnx-int8-dwfloat", {"engine": "openvino"}),
}


def build(alpha: float, size: int, folder: Path) -> dict[str, Path]:
    import tensorflow as tf
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgeclf.core.config import ModelConfig
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite
    from edgeclf.training.models import build_classifier

    cfg = ModelConfig(name="mobilenet_v2", alpha=alpha, dropout=0.2, weights="none", scratch_bn_momentum=0.9)
    model = build_classifier(cfg, 10, size).model
    calibration = np.random.default_rng(0).integers(0, 256, (32, size, size, 3)).astype(np.uint8)
    files: dict[str, Path] = {}

    def write(name: str, content: bytes) -> None:
        files[name] = folder / name
        files[name].write_bytes(content)

    write("tflite-fp32", tflite.convert(model, "fp32"))
    write("tflite-int8", tflite.convert(model, "int8-ptq", tflite.representative_dataset(calibration), "uint8"))
    write("tflite-int8-io8", tflite.convert(model, "int8-ptq", tflite.representative_dataset(calibration), "int8"))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = tflite.representative_dataset(calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    converter._experimental_disable_per_channel = True
    write("tflite-int8-tensor", converter.convert())

    fp32 = onnx_export.convert_float(model, size, 17)
    write("onnx-fp32", fp32)
    write("onnx-int8", onnx_export.quantize_int8(fp32, calibration.astype(np.float32)))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration[i : i + 1].astype(np.float32) for i in range(len(calibration)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"image": batch}

    _issue24_files(model, size, calibration, fp32, folder, write)
    src, pre = folder / "src.onnx", folder / "pre.onnx"
    src.write_bytes(fp32)
    quant_pre_process(str(src), str(pre))
    for name, fmt, per_channel, reduce_range, activation, extra in (
        ("onnx-int8-norr", QuantFormat.QDQ, True, False, QuantType.QUInt8, {}),
        ("onnx-int8-tensor", QuantFormat.QDQ, False, False, QuantType.QUInt8, {}),
        ("onnx-int8-s8s8", QuantFormat.QDQ, True, False, QuantType.QInt8, {}),
        ("onnx-int8-qop", QuantFormat.QOperator, True, False, QuantType.QUInt8, {}),
        # ConvSym: symmetric int8 weights and activations, zero points 0
        ("onnx-int8-sym", QuantFormat.QDQ, True, False, QuantType.QInt8, {"ActivationSymmetric": True}),
        ("onnx-w8a16", QuantFormat.QDQ, True, False, QuantType.QInt16, {}),
    ):
        files[name] = folder / name
        quantize_static(
            str(pre),
            str(files[name]),
            Reader(),
            quant_format=fmt,
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            activation_type=activation,
            extra_options={"WeightSymmetric": True, **extra},
        )
    return files


def _issue24_files(model, size: int, calibration: np.ndarray, fp32: bytes, folder: Path, write) -> None:
    """The hybrid files (depthwise layers kept in float by the repair's quantizers), w8a16, the
    symmetric s8s8 ONNX and NNCF's file."""
    import tensorflow as tf

    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite
    from edgeclf.export.onnx_repair import OnnxQuantizer
    from edgeclf.export.tflite_repair import TfliteQuantizer

    representative = tflite.representative_dataset(calibration)
    saved = tflite.inference_saved_model(model, folder / "savedmodel")
    quantizer = TfliteQuantizer(tflite.full_integer_converter(saved, representative, "uint8"), representative)
    write("tflite-int8-dwfloat", quantizer.build([x.name for x in quantizer.layers() if x.op == "DEPTHWISE_CONV_2D"]))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    write("tflite-w8a16", converter.convert())
    onnx_quantizer = OnnxQuantizer(fp32, calibration.astype(np.float32), reduce_range=True)
    depthwise = [x.name for x in onnx_quantizer.layers() if "depthwise" in x.name]
    write("onnx-int8-dwfloat", onnx_quantizer.build(depthwise))
    onnx_quantizer.close()
    write("onnx-int8-nncf", onnx_export.quantize_nncf(fp32, calibration.astype(np.float32)))


def convsym_notes(path: Path) -> list[str]:
    """Where an int8 ONNX file misses ONNX Runtime's ConvSym conditions, layer by layer: int8
    weights with zero points 0 (symmetric), int8 activations with zero point 0 in front of the
    Conv, and for a depthwise Conv, channels in multiples of 16."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: t for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}

    def zero_points(tensor: str):
        dq = producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3 or dq.input[2] not in init:
            return None
        return numpy_helper.to_array(init[dq.input[2]])

    notes = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        w, x = zero_points(node.input[1]), zero_points(node.input[0])
        misses = []
        if w is None or w.dtype != np.int8 or np.any(w != 0):
            misses.append("weights not symmetric int8")
        if x is None or x.dtype != np.int8 or np.any(x != 0):
            misses.append("activations not symmetric int8")
        channels = numpy_helper.to_array(init[producer[node.input[1]].input[0]]).shape[0] if w is not None else 0
        if group > 1 and channels % 16:
            misses.append(f"depthwise with {channels} channels (not a multiple of 16)")
        if misses:
            notes.append(f"{node.name}: {', '.join(misses)}")
    return notes


def worker(job: dict) -> dict:
    from edgeclf.measure.latency import time_calls

    path, threads, size, opts = Path(job["file"]), job["threads"], job["size"], job["options"]
    if opts.get("engine") == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(
            str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        )
        request = compiled.create_infer_request()

        def call(x):
            return request.infer([x])[0]

        dtype = np.float32
    elif path.name.startswith("tflite"):
        from ai_edge_litert import interpreter as lite

        resolver = getattr(lite.OpResolverType, opts.get("resolver", "AUTO"))
        interp = lite.Interpreter(
            model_path=str(path),
            num_threads=threads,
            experimental_op_resolver_type=resolver,
            experimental_default_delegate_latest_features=opts.get("latest", False),
        )
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

        def call(x):
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(out["index"])

        dtype = inp["dtype"]
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if opts.get("level") == "extended":
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        if opts.get("spinning") is False:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=KEEP_FLOAT
        )
        name = session.get_inputs()[0].name

        def call(x):
            return session.run(None, {name: x})[0]

        dtype = np.float32
    x = np.random.default_rng(1).integers(0, 256, (1, size, size, 3)).astype(dtype)
    samples = time_calls(call, x, job["warmup"], job["runs"], None)
    return {"p50_ms": float(np.median(samples))}


FAILURES: dict[str, str] = {}  # file: why its engine refused it (recorded, the others go on)


def measure(file: Path, threads: int, size: int, options: dict, args) -> float:
    job = {"file": str(file), "threads": threads, "size": size, "options": options, "warmup": 20, "runs": args.runs}
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        FAILURES[file.name] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return float("nan")
    return json.loads(lines[-1])["p50_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", default="2,1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    from edgeclf.runtime.machine import fingerprint

    threads = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory(prefix="edgeclf-int8-") as tmp:
        started = time.perf_counter()
        files = build(args.alpha, args.size, Path(tmp))
        sizes = {name: path.stat().st_size for name, path in files.items() if name not in ("src.onnx", "pre.onnx")}
        convsym = {name: convsym_notes(files[name]) for name in ("onnx-int8", "onnx-int8-sym")}
        print(f"converted in {time.perf_counter() - started:.0f} s", flush=True)
        samples: dict[str, dict[str, list[float]]] = {v: {str(t): [] for t in threads} for v in VARIANTS}
        for r in range(args.rounds):
            for t in threads:
                for variant, (key, options) in VARIANTS.items():
                    samples[variant][str(t)].append(measure(files[key], t, args.size, options, args))
            print(f"round {r + 1} of {args.rounds} done", flush=True)
    result = {}
    for variant, (key, _) in VARIANTS.items():
        engine = VARIANTS[variant][1].get("engine")
        base = (
            "openvino fp32" if engine == "openvino" else "ort fp32" if key.startswith("onnx") else "litert fp32 XNNPACK"
        )
        result[variant] = {
            "file": key,
            "bytes": sizes[key],
            "p50_ms": {t: float(np.median(s)) for t, s in samples[variant].items()},
            "vs_fp32": {t: float(np.median(s) / np.median(samples[base][t])) for t, s in samples[variant].items()},
            "rounds": samples[variant],
            **({"failed": FAILURES[key]} if key in FAILURES else {}),
        }
    document = {
        "command": "python tools/bench_int8_options.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "model": {"name": "mobilenet_v2", "alpha": args.alpha, "size": args.size, "classes": 10},
        "method": {
            "rounds": args.rounds,
            "runs": args.runs,
            "warmup": 20,
            "batch": 1,
            "timed": "the engine's call on a prepared input, p50 per process, median over rounds",
        },
        "variants": result,
        "convsym_misses": convsym,  # per Conv layer, where a file misses ONNX Runtime's ConvSym conditions
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print("| variant | KiB | " + " | ".join(f"{t} thr ms | vs fp32" for t in threads) + " |")
    print("|---|---|" + "---|---|" * len(threads))
    for variant, r in result.items():
        cells = " | ".join(f"{r['p50_ms'][str(t)]:.2f} | {r['vs_fp32'][str(t)]:.2f}" for t in threads)
        print(f"| {variant} | {r['bytes'] / 1024:.0f} | {cells} |")


if __name__ == "__main__":
    main()
