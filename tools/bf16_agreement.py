"""How far bf16 inference moves a trained model's answers: the run's float ONNX file on OpenVINO
in f32 and in bf16, against the Keras model's probabilities, on a split of the run.

    python tools/bf16_agreement.py RUN_DIR --split val --out docs/benchmarks/bf16_agreement.json

Prints and writes, per precision: images, top-1 agreement with Keras, accuracy and its drop in
points, and the per-image max |p - p_keras|: its maximum, 99th percentile and median.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from edgeclf.core.run_directory import Run  # noqa: E402
from edgeclf.runtime import read_artifacts  # noqa: E402
from edgeclf.runtime.classifier import Classifier  # noqa: E402
from edgeclf.runtime.machine import fingerprint  # noqa: E402
from edgeclf.training.models import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    run = Run.open(args.run)
    pixels, labels, _ = run.images(args.split)
    reference = load_model(run.model_path).predict(pixels.astype(np.float32), verbose=0, batch_size=64)
    info = {a.name: a for a in read_artifacts(run.path)}["onnx-fp32"]
    results = {}
    for precision in ("fp32", "bf16"):
        info.precision = precision  # the same file, compiled with OpenVINO's f32 or bf16 hint
        classifier = Classifier(info, run.path / info.path, engine="openvino")
        probs = classifier.predict_pixels(pixels, 64)
        per_image = np.abs(probs - reference).max(axis=1)
        accuracy, float_accuracy = (probs.argmax(1) == labels).mean(), (reference.argmax(1) == labels).mean()
        results[precision] = {
            "engine": classifier.engine,
            "images": int(len(labels)),
            "agreement_with_float": float((probs.argmax(1) == reference.argmax(1)).mean()),
            "accuracy": float(accuracy),
            "drop_points": float(100 * (float_accuracy - accuracy)),
            "max_abs_diff": float(per_image.max()),
            "p99_abs_diff": float(np.percentile(per_image, 99)),
            "median_abs_diff": float(np.median(per_image)),
        }
        print(precision, json.dumps(results[precision]))
    if args.out:
        document = {
            "command": "python tools/bf16_agreement.py " + " ".join(sys.argv[1:]),
            "machine": fingerprint(None, "cpu"),
            "run": str(run.path),
            "split": args.split,
            "model": run.metadata["model"],
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
