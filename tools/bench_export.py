"""Is `edgeclf export --int8` as fast as the converters called the way their documentation shows?
Side by side in one run, alternating, each in a fresh process (imports included, as a user waits):

- plain: a script that loads the run's model.keras and qat_model.h5 and calls each converter once
  per artifact, as documented: TFLiteConverter.from_keras_model for fp32, fp16 and full-integer
  int8 (from the QAT model, 100 calibration images), tf2onnx.convert.from_keras for the float ONNX
  and onnxruntime's quantize_static (QDQ, per-channel) for the int8 ONNX; nothing validated;
- edgeclf: `edgeclf export RUN --int8 --formats tflite,onnx` on a copy of the run, every
  validation kept (accuracy gates, tolerances, the parity record), OpenVINO entries left out as
  the plain script has none.

The ratio edgeclf / plain is the median over rounds; goal at most 1.0.

    python tools/bench_export.py RUN_DIR --rounds 2 --out docs/benchmarks/export_vs_converters.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r"""
import os, sys, tempfile
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf, tf_keras as keras, tf2onnx, tensorflow_model_optimization as tfmot
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
run = sys.argv[1]
model = keras.models.load_model(run + "/model.keras")
with tfmot.quantization.keras.quantize_scope():
    qat = keras.models.load_model(run + "/qat_model.h5")
size = model.input_shape[1]
calibration = np.random.default_rng(0).uniform(0, 255, (100, size, size, 3)).astype(np.float32)
out = tempfile.mkdtemp()
for precision in ("fp32", "fp16"):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    open(f"{out}/{precision}.tflite", "wb").write(converter.convert())
converter = tf.lite.TFLiteConverter.from_keras_model(qat)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = lambda: ([x[None] / 127.5 - 1] for x in calibration)
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = converter.inference_output_type = tf.uint8
open(f"{out}/int8.tflite", "wb").write(converter.convert())
spec = (tf.TensorSpec([None, size, size, 3], tf.float32, name="image"),)
proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=f"{out}/fp32.onnx")
class Reader(CalibrationDataReader):
    def __init__(self):
        self.items = iter([{proto.graph.input[0].name: x[None]} for x in calibration])
    def get_next(self):
        return next(self.items, None)
quantize_static(f"{out}/fp32.onnx", f"{out}/int8.onnx", Reader(), quant_format=QuantFormat.QDQ,
                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
"""


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode not in (0, 2):  # 2: an artifact failed its gate, everything was still converted
        raise SystemExit(f"{command[:3]} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from edgeclf.runtime.machine import fingerprint

    plain, edgeclf = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "plain.py"
        script.write_text(PLAIN)
        for i in range(args.rounds):
            copy = Path(tmp) / f"run{i}"
            shutil.copytree(args.run, copy)
            shutil.rmtree(copy / "export", ignore_errors=True)
            steps = [
                ("plain", [sys.executable, str(script), str(copy)]),
                (
                    "edgeclf",
                    [sys.executable, "-m", "edgeclf", "export", str(copy), "--int8", "--formats", "tflite,onnx"],
                ),
            ]
            for name, command in steps if i % 2 == 0 else steps[::-1]:  # alternate which goes first
                (plain if name == "plain" else edgeclf).append(round(timed(command), 2))
                print(f"round {i + 1}: {name} {(plain if name == 'plain' else edgeclf)[-1]:.1f} s", flush=True)
            timings = json.loads((copy / "export" / "artifacts.json").read_text()).get("timings", {})
    ratio = statistics.median(e / p for e, p in zip(edgeclf, plain, strict=True))
    record = {
        "command": "python tools/bench_export.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "plain_s": plain,
        "edgeclf_s": edgeclf,
        "ratio_median": round(ratio, 3),
        "edgeclf_steps_last_round": timings,
    }
    print(f"edgeclf / plain converters: {ratio:.2f}x (plain {plain}, edgeclf {edgeclf})")
    if args.out:
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
