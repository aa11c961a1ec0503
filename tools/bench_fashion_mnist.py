"""Accuracy on the full Fashion-MNIST through the edgeclf command line, as a user would run it:
make the folder, train, qat, export --int8 (QAT and PTQ TFLite, PTQ ONNX, fp16), evaluate on the
official 10,000 test images. Writes OUT.json (every command with its wall time and exit status,
the recipe, eval.json's per-artifact metrics, the machine) and prints a markdown table.

    apt-get install dataset-fashion-mnist
    python tools/bench_fashion_mnist.py --work /tmp/fmnist-bench --out docs/benchmarks/fashion_mnist_full.json

The folder: tools/make_fashion_folder.py --per-class 6000 --val-fraction 0.1 (seed 0): the official
60,000 training images split 54,000 train / 6,000 val per class-stratified draw, the official 10,000
as test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """\
# Full Fashion-MNIST, MobileNetV2 from random weights (offline), one fixed epoch budget.
data:
  image_size: {size}
  batch_size: 64
augment:                     # the items are centred and upright: flips and small shifts only
  horizontal_flip: true
  rotation: 0.0
  translation: 0.05
  zoom: 0.0
  contrast: 0.0
model:
  name: mobilenet_v2
  alpha: {alpha}
  weights: none
  dropout: 0.1
train:
  epochs: {epochs}
  fine_tune_epochs: 0        # a random backbone trains whole in phase 1
  learning_rate: 0.003
  schedule: cosine
  min_learning_rate: 1.0e-5
  early_stopping_patience: 4
"""


def run(command: list[str], log: list[dict]) -> int:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT)
    log.append(
        {"command": " ".join(command), "seconds": round(time.perf_counter() - started, 1), "exit": proc.returncode}
    )
    print(f"  -> exit {proc.returncode} in {log[-1]['seconds']} s", flush=True)
    return proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fmnist-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "fashion_mnist_full.json")
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--qat-learning-rate", type=float, default=1e-6)
    args = parser.parse_args()

    py = sys.executable
    folder, run_dir, config = args.work / "folder", args.work / "run", args.work / "recipe.yaml"
    args.work.mkdir(parents=True, exist_ok=True)
    config.write_text(RECIPE.format(size=args.size, alpha=args.alpha, epochs=args.epochs))
    log: list[dict] = []
    started = time.perf_counter()
    if not (folder / "test").is_dir():
        run([py, "tools/make_fashion_folder.py", str(folder), "--per-class", "6000", "--val-fraction", "0.1"], log)
    steps = [
        [py, "-m", "edgeclf", "train", str(folder), "--out", str(run_dir), "--config", str(config), "--overwrite"],
        [
            py,
            "-m",
            "edgeclf",
            "qat",
            str(run_dir),
            "--epochs",
            str(args.qat_epochs),
            "--learning-rate",
            str(args.qat_learning_rate),
        ],
        [py, "-m", "edgeclf", "export", str(run_dir), "--int8", "--int8-source", "both"],
        [py, "-m", "edgeclf", "evaluate", str(run_dir), "--split", "test"],
    ]
    for step in steps:
        code = run(step, log)
        if code not in (0, 2) or (code == 2 and "export" not in step):
            break  # export exits 2 when an artifact fails its gate: evaluate still measures every file
    total = time.perf_counter() - started
    evaluation = json.loads((run_dir / "reports" / "eval.json").read_text())
    metadata = json.loads((run_dir / "metadata.json").read_text())
    artifacts = json.loads((run_dir / "export" / "artifacts.json").read_text())["artifacts"]
    result = {
        "commands": log,
        "total_seconds": round(total, 1),
        "recipe": config.read_text(),
        "qat": {"epochs": args.qat_epochs, "learning_rate": args.qat_learning_rate},
        "training": metadata["training"],
        "dataset": metadata["dataset"],
        "validation_at_export": {a["name"]: {**a["validation"], "status": a["status"]} for a in artifacts},
        "test": {
            name: {k: r[k] for k in ("accuracy", "delta_points", "agreement_with_float", "engine_version", "kernels")}
            | {"per_class_f1": {c: v["f1"] for c, v in r["per_class"].items()}, "macro_f1": r["macro"]["f1"]}
            for name, r in evaluation["artifacts"].items()
        },
        "machine": evaluation["machine"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}; total {total / 60:.1f} min\n")
    print("| artifact | test accuracy | Δ vs float (pts) | top-1 agreement | macro F1 |\n|---|---|---|---|---|")
    for name, r in result["test"].items():
        cells = [f"{r['accuracy']:.2%}", f"{r['delta_points']:+.2f}", f"{r['agreement_with_float']:.2%}"]
        print(f"| {name} | " + " | ".join(cells) + f" | {r['macro_f1']:.4f} |")


if __name__ == "__main__":
    main()
