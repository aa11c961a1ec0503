"""Transfer from natural-image features: the pretrained MobileNetV2 1.0 (tools/fetch_backbone.py)
against the same network from random weights, on Fashion-MNIST targets of 10, 40 and 100 training
images per class (10 classes), at 96 and 160 px, tested on the official 10,000 test images.

Recipes, each with the same budget of 15 epochs (early stopping may end one sooner; the epochs run
and the wall time are recorded):
  head        the head only, backbone frozen, 15 epochs
  two_phase   10 epochs head, then 5 with the top `fine_tune_layers` backbone layers at `ft_lr`
  full        5 epochs head, then 10 with the whole backbone at `ft_lr` (BatchNorm frozen)
  scratch     random weights, every layer training, 15 epochs (PreciseBN on)
Everything else is configs/default.yaml (augmentation, batch 32, head rate 1e-3, plateau schedule).
Validation: 20 images per class drawn from the official training images apart from the training
draw (seeded). Results go to OUT after every run; a run already in OUT is not repeated (--force).

    apt-get install dataset-fashion-mnist && python tools/fetch_backbone.py
    python tools/bench_transfer.py --out docs/benchmarks/transfer.json
    python tools/bench_transfer.py --per-class 10 --sizes 96 --recipes head,scratch   # a part of the grid
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetch_backbone import fetch  # noqa: E402
from make_fashion_subset import CLASSES, SOURCE, read_idx  # noqa: E402

from edgeclf.runtime.machine import fingerprint  # noqa: E402

RECIPES = {
    "head": {"epochs": 15, "fine_tune_epochs": 0},
    "two_phase": {"epochs": 10, "fine_tune_epochs": 5, "fine_tune_layers": 30, "fine_tune_learning_rate": 1.0e-5},
    "full": {"epochs": 5, "fine_tune_epochs": 10, "fine_tune_layers": 1000, "fine_tune_learning_rate": 1.0e-4},
    "scratch": {"epochs": 15, "fine_tune_epochs": 0},
}
VAL_PER_CLASS = 20


def write_images(images: np.ndarray, indices, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")


def make_folders(work: Path, sizes: list[int], seed: int = 0) -> dict[int, Path]:
    """work/n{N}/train|val|test: N seeded training images per class, VAL_PER_CLASS validation
    images (disjoint), test -> the official test images (written once, linked)."""
    train_x, train_y = read_idx(SOURCE / "train-images-idx3-ubyte.gz"), read_idx(SOURCE / "train-labels-idx1-ubyte.gz")
    test = work / "test"
    if not test.is_dir():
        test_x, test_y = read_idx(SOURCE / "t10k-images-idx3-ubyte.gz"), read_idx(SOURCE / "t10k-labels-idx1-ubyte.gz")
        for label, name in enumerate(CLASSES):
            write_images(test_x, np.flatnonzero(test_y == label), test / name)
    folders = {}
    for n in sizes:
        folder = work / f"n{n}"
        folders[n] = folder
        if (folder / "done").is_file():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        rng = np.random.default_rng(seed)
        for label, name in enumerate(CLASSES):
            order = rng.permutation(np.flatnonzero(train_y == label))
            write_images(train_x, order[:n], folder / "train" / name)
            write_images(train_x, order[n : n + VAL_PER_CLASS], folder / "val" / name)
        (folder / "test").symlink_to(test, target_is_directory=True)
        (folder / "done").write_text("")
    return folders


def config_text(recipe: str, size: int) -> str:
    train = ", ".join(f"{k}: {v}" for k, v in RECIPES[recipe].items())
    return f"data: {{image_size: {size}}}\nmodel: {{name: mobilenet_v2, alpha: 1.0}}\ntrain: {{{train}}}\n"


def run_one(folder: Path, recipe: str, size: int, backbone: Path, work: Path) -> dict:
    name = f"{folder.name}_{size}_{recipe}"
    cfg, out = work / f"{name}.yaml", work / "runs" / name
    cfg.write_text(config_text(recipe, size))
    weights = "none" if recipe == "scratch" else str(backbone)
    edgeclf = [sys.executable, "-m", "edgeclf"]
    train = [
        *edgeclf,
        "train",
        str(folder),
        "--out",
        str(out),
        "--config",
        str(cfg),
        "--weights",
        weights,
        "--overwrite",
    ]
    started = time.perf_counter()
    subprocess.run(train, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([*edgeclf, "evaluate", str(out), "--split", "test"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    eval_s = time.perf_counter() - started
    evaluation = json.loads((out / "reports" / "eval.json").read_text())
    meta = json.loads((out / "metadata.json").read_text())
    result = {
        "command": " ".join(train[1:]).replace(str(ROOT) + "/", ""),
        "config": cfg.read_text(),
        "test_accuracy": evaluation["artifacts"]["keras-fp32"]["accuracy"],
        "test_images": evaluation["images"],
        "val_accuracy": meta["training"]["val_accuracy"],
        "epochs_run": meta["training"]["epochs_run"],
        "training_seconds": round(meta["training"]["seconds"], 1),
        "train_command_seconds": round(train_s, 1),
        "evaluate_seconds": round(eval_s, 1),
        "weights": meta["weights"]["source"],
    }
    shutil.rmtree(out)  # the numbers are kept; the run is 10-30 MB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/fmnist-transfer"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "transfer.json")
    parser.add_argument("--per-class", default="10,40,100")
    parser.add_argument("--sizes", default="96,160")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--force", action="store_true", help="run again what OUT already has")
    args = parser.parse_args()

    per_class = [int(v) for v in args.per_class.split(",")]
    sizes = [int(v) for v in args.sizes.split(",")]
    recipes = args.recipes.split(",")
    backbone = fetch(quiet=True)
    args.work.mkdir(parents=True, exist_ok=True)
    folders = make_folders(args.work, per_class)
    document = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if document.get("version") != 2:
        document = {"version": 2, "results": {}}
    document.update(
        machine=fingerprint(None, "cpu"),
        backbone=str(backbone.name),
        recipes={name: config_text(name, 0).replace("image_size: 0", "image_size: SIZE") for name in RECIPES},
        validation_per_class=VAL_PER_CLASS,
    )
    for n in per_class:
        for size in sizes:
            for recipe in recipes:
                key = f"{n}/{size}/{recipe}"
                if key in document["results"] and not args.force:
                    continue
                print(f"{key} ...", flush=True)
                document["results"][key] = run_one(folders[n], recipe, size, backbone, args.work)
                r = document["results"][key]
                print(f"{key}: test {r['test_accuracy']:.2%} in {r['training_seconds']:.0f} s", flush=True)
                write(document, args.out)
    write(document, args.out)
    print(table(document))


def write(document: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, out)


def table(document: dict) -> str:
    """The markdown table of docs/BENCHMARKS.md section 2: test accuracy (training seconds)."""
    results = document["results"]
    lines = [
        "| images per class | size | head only | two-phase | whole backbone | scratch | best transfer - scratch |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted({tuple(map(int, k.split("/")[:2])) for k in results})
    for n, size in keys:
        cells, accs = [], {}
        for recipe in RECIPES:
            r = results.get(f"{n}/{size}/{recipe}")
            cell = f"{r['test_accuracy']:.2%} ({r['training_seconds']:.0f} s, {r['epochs_run']} ep)" if r else "-"
            cells.append(cell)
            if r:
                accs[recipe] = r["test_accuracy"]
        gap = (
            f"{(max(v for k, v in accs.items() if k != 'scratch') - accs['scratch']) * 100:+.1f} points"
            if "scratch" in accs and len(accs) > 1
            else "-"
        )
        lines.append(f"| {n} | {size} | " + " | ".join(cells) + f" | {gap} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
