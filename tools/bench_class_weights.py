"""Class weights on an imbalanced folder: Fashion-MNIST with one class at a fifth of the others'
images, trained with train.class_weights none and balanced on the same seed and recipe, tested on
the official test images (balanced: 1,000 per class). Reports the minority class's recall, the
macro recall and the accuracy of both runs into OUT (JSON) and as a table.

    apt-get install dataset-fashion-mnist
    python tools/bench_class_weights.py --out docs/benchmarks/class_weights.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_transfer import write_images  # noqa: E402
from make_fashion_subset import CLASSES, SOURCE, read_idx  # noqa: E402

from edgeclf.runtime.machine import fingerprint  # noqa: E402

RECIPE = """\
data: {image_size: 48, batch_size: 32}
model: {name: mobilenet_v2, alpha: 0.35, weights: none}
train: {epochs: 12, fine_tune_epochs: 0, learning_rate: 0.003, schedule: cosine, min_learning_rate: 1.0e-5,
        early_stopping_patience: 12, class_weights: WEIGHTS}
"""


def make_folder(dest: Path, per_class: int, minority: str, fraction: float, seed: int = 0) -> dict:
    """dest/train|val|test: per_class training and per_class / 5 validation images per class (the
    minority class `fraction` of both), test: the official test images."""
    shutil.rmtree(dest, ignore_errors=True)
    train_x, train_y = read_idx(SOURCE / "train-images-idx3-ubyte.gz"), read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    test_x, test_y = read_idx(SOURCE / "t10k-images-idx3-ubyte.gz"), read_idx(SOURCE / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    counts = {}
    for label, name in enumerate(CLASSES):
        n = round(per_class * fraction) if name == minority else per_class
        order = rng.permutation(np.flatnonzero(train_y == label))
        write_images(train_x, order[:n], dest / "train" / name)
        write_images(train_x, order[n : n + max(1, n // 5)], dest / "val" / name)
        write_images(test_x, np.flatnonzero(test_y == label), dest / "test" / name)
        counts[name] = n
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fmnist-imbalanced"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "class_weights.json")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--minority", default="shirt")
    parser.add_argument("--fraction", type=float, default=0.2)
    args = parser.parse_args()

    counts = make_folder(args.work / "data", args.per_class, args.minority, args.fraction)
    results, edgeclf = {}, [sys.executable, "-m", "edgeclf"]
    for setting in ("none", "balanced"):
        cfg, out = args.work / f"{setting}.yaml", args.work / f"run-{setting}"
        cfg.write_text(RECIPE.replace("WEIGHTS", setting))
        train = [*edgeclf, "train", str(args.work / "data"), "--out", str(out), "--config", str(cfg), "--overwrite"]
        started = time.perf_counter()
        subprocess.run(train, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        subprocess.run(
            [*edgeclf, "evaluate", str(out), "--split", "test"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
        )
        keras = json.loads((out / "reports" / "eval.json").read_text())["artifacts"]["keras-fp32"]
        meta = json.loads((out / "metadata.json").read_text())
        results[setting] = {
            "command": " ".join(train[1:]).replace(str(ROOT) + "/", ""),
            "minority_recall": keras["per_class"][args.minority]["recall"],
            "minority_precision": keras["per_class"][args.minority]["precision"],
            "macro_recall": keras["macro"]["recall"],
            "accuracy": keras["accuracy"],
            "class_weights": meta["training"]["class_weights"],
            "seconds": round(seconds, 1),
        }
    document = {
        "recipe": RECIPE,
        "train_counts": counts,
        "minority": args.minority,
        "results": results,
        "machine": fingerprint(None, "cpu"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"| class_weights | {args.minority} recall | {args.minority} precision | macro recall | accuracy | time |")
    print("|---|---|---|---|---|---|")
    for setting, r in results.items():
        print(
            f"| {setting} | {r['minority_recall']:.2%} | {r['minority_precision']:.2%} | {r['macro_recall']:.2%} | "
            f"{r['accuracy']:.2%} | {r['seconds']:.0f} s |"
        )


if __name__ == "__main__":
    main()
