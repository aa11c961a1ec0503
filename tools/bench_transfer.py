"""Transfer learning offline: pretrain on Fashion-MNIST classes 0-4 (all their images), then train
on classes 5-9 with 100 images per class, once starting from that run's backbone (--weights RUN)
and once from random weights, with the same epoch budget; both evaluated on the official test
images of classes 5-9. Writes OUT (JSON: commands with times, test accuracies) and prints a table.

    python tools/bench_fashion_mnist.py ...      # makes /tmp/fmnist-bench/folder first
    python tools/bench_transfer.py --full /tmp/fmnist-bench/folder --out docs/benchmarks/transfer.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fashion_subset import CLASSES  # noqa: E402

RECIPE = """\
data: {{image_size: {size}, batch_size: {batch}}}
augment: {{horizontal_flip: true, rotation: 0.0, translation: 0.05, zoom: 0.0, contrast: 0.0}}
model: {{name: mobilenet_v2, alpha: {alpha}, dropout: 0.1}}
train: {{epochs: {epochs}, fine_tune_epochs: {fine_tune}, fine_tune_layers: {layers}, learning_rate: 0.003,
        fine_tune_learning_rate: {fine_lr}, schedule: cosine, min_learning_rate: 1.0e-5, early_stopping_patience: 6}}
"""


def link_classes(full: Path, dest: Path, classes: list[str], per_class_train: int | None) -> Path:
    """dest/train|val|test/<class>: whole class folders linked, or the first per_class_train
    training images copied (val: a fifth as many)."""
    shutil.rmtree(dest, ignore_errors=True)
    for split in ("train", "val", "test"):
        for name in classes:
            target = dest / split / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if per_class_train is None or split == "test":
                target.symlink_to(full / split / name, target_is_directory=True)
                continue
            target.mkdir()
            count = per_class_train if split == "train" else max(1, per_class_train // 5)
            for path in sorted((full / split / name).glob("*.png"))[:count]:
                shutil.copy(path, target / path.name)
    return dest


def run(command: list[str], log: list[dict]) -> None:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    log.append({"command": " ".join(command), "seconds": round(time.perf_counter() - started, 1)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=Path, default=Path("/tmp/fmnist-bench/folder"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/fmnist-transfer"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "transfer.json")
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep an earlier pretrained run in --work")
    args = parser.parse_args()

    py, work, log = sys.executable, args.work, []
    work.mkdir(parents=True, exist_ok=True)
    source = link_classes(args.full, work / "classes0-4", CLASSES[:5], None)
    target = link_classes(args.full, work / "classes5-9", CLASSES[5:], args.per_class)
    common = dict(layers=60, fine_lr=0.0003)
    recipes = {
        "pretrain": dict(epochs=args.pretrain_epochs, fine_tune=0, batch=64, **common),
        # edgeclf's default shape: the head on the frozen backbone, then its top 60 layers at a low rate
        "transfer_top": dict(epochs=10, fine_tune=10, batch=32, **common),
        # the head for 2 epochs, then the whole backbone (BatchNorm frozen) at 1e-3
        "transfer_all": dict(epochs=2, fine_tune=18, batch=32, layers=200, fine_lr=0.001),
        "scratch": dict(epochs=20, fine_tune=0, batch=32, **common),  # the same 20 epochs, every layer training
    }
    for name, recipe in recipes.items():
        (work / f"{name}.yaml").write_text(RECIPE.format(size=args.size, alpha=args.alpha, **recipe))
    edgeclf = [py, "-m", "edgeclf"]
    if not (args.reuse and (work / "pretrained" / "model.keras").is_file()):
        run([*edgeclf, "train", str(source), "--out", str(work / "pretrained"), "--config", str(work / "pretrain.yaml"),
             "--weights", "none", "--overwrite"], log)  # fmt: skip
    results = {}
    pretrained = str(work / "pretrained")
    for name, weights in (("transfer_top", pretrained), ("transfer_all", pretrained), ("scratch", "none")):
        out = work / name
        run([*edgeclf, "train", str(target), "--out", str(out), "--config", str(work / f"{name}.yaml"),
             "--weights", weights, "--overwrite"], log)  # fmt: skip
        run([*edgeclf, "evaluate", str(out), "--split", "test"], log)
        evaluation = json.loads((out / "reports" / "eval.json").read_text())
        meta = json.loads((out / "metadata.json").read_text())
        results[name] = {
            "test_accuracy": evaluation["artifacts"]["keras-fp32"]["accuracy"],
            "test_images": evaluation["images"],
            "weights": meta["weights"],
            "training_seconds": meta["training"]["seconds"],
            "epochs_run": meta["training"]["epochs_run"],
        }
    pretrained = json.loads((work / "pretrained" / "metadata.json").read_text())["training"]
    document = {"commands": log, "recipes": {n: (work / f"{n}.yaml").read_text() for n in recipes},
                "pretrain": {"val_accuracy": pretrained["val_accuracy"], "seconds": pretrained["seconds"]},
                "results": results}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    scratch = results["scratch"]["test_accuracy"]
    for name in ("transfer_top", "transfer_all"):
        accuracy = results[name]["test_accuracy"]
        print(f"{name} {accuracy:.2%} vs scratch {scratch:.2%} ({(accuracy - scratch) * 100:+.1f} points)")
    print(f"pretraining {pretrained['seconds']:.0f} s")


if __name__ == "__main__":
    main()
