"""Peak memory of the stages that read a whole split, on N and on 10 x N images: does it grow with the split?

Takes an exported run (RUN), writes a folder of distinct images made from the embedded Fashion-MNIST
subset (each an augmented copy: flip, shift, brightness; seeded), and two copies of RUN whose
dataset.json lists N and 10 x N of those images as both the validation and the test split. Then, each
in a fresh process, `edgeclf evaluate` (the float model and every artifact on the test split) and
`edgeclf validate` (export validation: the float model's reference and every artifact on the
validation split), recording the peak RSS (VmHWM) and the wall time. With --train N_PER_CLASS, also
on folders of N_T = 10 x N_PER_CLASS and 10 x N_T images split 70/15/15: `edgeclf data pack`, `edgeclf
train` of one epoch on the pack and one epoch on the folder (MobileNetV2 at the run's alpha and size,
random weights; images/s is the training split over the epoch's training steps, from history.csv).
Training holds a shuffle buffer of data.shuffle_buffer (1,000) images, however large the set: N_T must
fill it (at least 143 per class) for N_T vs 10 x N_T to compare like with like. --skip-eval: training only.

    python tools/bench_memory.py /tmp/run224 --per-class 20 --out docs/benchmarks/memory_n_vs_10n.json
    python tools/bench_memory.py /tmp/run224 --train 150 --skip-eval --out docs/benchmarks/memory_train_n_vs_10n.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_folder(dest: Path, classes: list[str], per_class: int, seed: int = 0) -> dict[str, list[str]]:
    """per_class distinct augmented copies per class under dest/<class>/; {class: [relative paths]}."""
    from edgeclf.demo import embedded_dataset

    source, rng, made = embedded_dataset(), np.random.default_rng(seed), {}
    for name in classes:
        files = sorted((source / name).glob("*.png"))
        (dest / name).mkdir(parents=True, exist_ok=True)
        made[name] = []
        for i in range(per_class):
            img = Image.open(files[i % len(files)]).convert("L")
            if rng.random() < 0.5:
                img = ImageOps.mirror(img)
            img = img.rotate(0, translate=tuple(int(v) for v in rng.integers(-2, 3, 2)))
            img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.7, 1.3)))
            rel = f"{name}/{i:05d}.png"
            img.save(dest / rel)
            made[name].append(rel)
    return made


def sized_run(run: Path, dest: Path, folder: Path, made: dict[str, list[str]], count: int) -> Path:
    """A copy of run whose val and test splits are the first `count` per class of `made`."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("reports"))
    manifest = json.loads((dest / "dataset.json").read_text())
    classes = manifest["classes"]
    records = []
    for split in ("val", "test"):
        for label, name in enumerate(classes):
            for rel in made[name][:count]:
                digest = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
                records.append({"path": rel, "split": split, "label": label, "label_name": name, "sha256": digest})
    train = [r for r in manifest["files"] if r["split"] == "train"][:1]  # kept: the schema wants a train split
    for record in train:
        (folder / record["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(manifest["root"]) / record["path"], folder / record["path"])
    manifest.update(root=str(folder), files=train + records)
    (dest / "dataset.json").write_text(json.dumps(manifest))
    return dest


def subset(folder: Path, dest: Path, made: dict[str, list[str]], count: int) -> Path:
    """A folder of copies of the first `count` images per class of `made`."""
    for name, files in made.items():
        (dest / name).mkdir(parents=True)
        for rel in files[:count]:
            shutil.copy(folder / rel, dest / rel)
    return dest


def train_stages(folder: Path, tmp: Path, label: str, run: Path) -> dict:
    """Peak RSS and time of pack, train on the pack and train on the folder (one epoch each)."""
    model = json.loads((run / "metadata.json").read_text())["model"]
    size = str(json.loads((run / "metadata.json").read_text())["preprocessing"]["size"][0])
    edgeclf = [sys.executable, "-m", "edgeclf"]
    common = [
        "--image-size",
        size,
        "--model",
        model["name"],
        "--alpha",
        str(model["alpha"]),
        "--weights",
        "none",
        "--epochs",
        "1",
        "--fine-tune-epochs",
        "0",
    ]
    pack = tmp / f"pack_{label}"
    stages = {"pack": peak([*edgeclf, "data", "pack", str(folder), "--out", str(pack), "--image-size", size])}
    for stage, source in (("train_packed", pack), ("train_folder", folder)):
        out = tmp / f"{stage}_{label}"
        stages[stage] = peak([*edgeclf, "train", str(source), "--out", str(out), *common])
        row = next(csv.DictReader((out / "history.csv").open()))
        images = sum(json.loads((out / "dataset.json").read_text())["counts"]["train"].values())
        stages[stage].update(train_images=images, images_per_second=images / float(row["train_seconds"]))
    return stages


def peak(command: list[str]) -> dict:
    """Run a command; its peak RSS (GNU time's %M, KiB) and wall seconds."""
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True)
    if proc.returncode != 0 and "failed validation" not in proc.stderr:  # a verdict is a result, not a failure
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr[-800:]}")
    return {"peak_rss_mb": int(proc.stderr.strip().splitlines()[-1]) / 1024, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--per-class", type=int, default=20, help="N / classes")
    parser.add_argument("--train", type=int, default=0, metavar="N_PER_CLASS", help="also pack and train")
    parser.add_argument("--skip-eval", action="store_true", help="only the training stages")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from edgeclf.runtime.machine import fingerprint

    classes = json.loads((args.run / "dataset.json").read_text())["classes"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="edgeclf-memory-") as tmp:
        folder = Path(tmp) / "images"
        made = make_folder(folder, classes, 10 * max(args.per_class, args.train))
        for label, scale in (("N", 1), ("10N", 10)):
            edgeclf = [sys.executable, "-m", "edgeclf"]
            results[label] = {}
            if not args.skip_eval:
                count = scale * args.per_class
                run = sized_run(args.run, Path(tmp) / f"run_{label}", folder, made, count)
                results[label].update(
                    images=count * len(classes),
                    evaluate=peak([*edgeclf, "evaluate", str(run), "--split", "test"]),
                    validate=peak([*edgeclf, "validate", str(run)]),
                )
            if args.train:
                images = subset(folder, Path(tmp) / f"images_{label}", made, scale * args.train)
                results[label]["train_folder_images"] = scale * args.train * len(classes)
                results[label].update(train_stages(images, Path(tmp), label, args.run))
            print(label, json.dumps(results[label]), flush=True)
    growth = {
        stage: results["10N"][stage]["peak_rss_mb"] / results["N"][stage]["peak_rss_mb"] - 1
        for stage in results["N"]
        if isinstance(results["N"][stage], dict)
    }
    document = {
        "command": "python tools/bench_memory.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "run": json.loads((args.run / "metadata.json").read_text())["model"],
        "image_size": json.loads((args.run / "metadata.json").read_text())["preprocessing"]["size"],
        "results": results,
        "peak_rss_growth_10n_vs_n": growth,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(growth, indent=2))


if __name__ == "__main__":
    main()
