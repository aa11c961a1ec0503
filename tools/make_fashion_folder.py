"""Lay Fashion-MNIST out as a user's presplit folder: DEST/train|val|test/<class>/<index>.png.

Source: the IDX files of Debian's `dataset-fashion-mnist` (Zalando Research, MIT licence). From the
official 60,000 training images, `--per-class` images of each class are drawn (seeded), of which
`--val-fraction` go to val/ and the rest to train/; test/ holds the official 10,000 test images
(or the first `--test-per-class` of each class). Class folders are written class by class, as a
user's photos would be.

    apt-get install dataset-fashion-mnist
    python tools/make_fashion_folder.py /tmp/fmnist-1k --per-class 1000            # 8,500 / 1,500 / 10,000
    python tools/make_fashion_folder.py /tmp/fmnist-full --per-class 6000          # 54,000 / 6,000 / 10,000
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fashion_subset import CLASSES, SOURCE, read_idx  # noqa: E402


def write(images: np.ndarray, indices, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument(
        "--per-class", type=int, default=1000, help="training-file images per class (train + val), at most 6000"
    )
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-per-class", type=int, default=1000, help="official test images per class, at most 1000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()

    train_x, train_y = (
        read_idx(args.source / "train-images-idx3-ubyte.gz"),
        read_idx(args.source / "train-labels-idx1-ubyte.gz"),
    )
    test_x, test_y = (
        read_idx(args.source / "t10k-images-idx3-ubyte.gz"),
        read_idx(args.source / "t10k-labels-idx1-ubyte.gz"),
    )
    if args.dest.exists():
        shutil.rmtree(args.dest)
    rng = np.random.default_rng(args.seed)
    counts = {"train": 0, "val": 0, "test": 0}
    for label, name in enumerate(CLASSES):
        chosen = np.sort(rng.permutation(np.flatnonzero(train_y == label))[: args.per_class])
        val = set(rng.permutation(chosen)[: round(len(chosen) * args.val_fraction)].tolist())
        write(train_x, [i for i in chosen if i not in val], args.dest / "train" / name)
        write(train_x, sorted(val), args.dest / "val" / name)
        write(test_x, np.flatnonzero(test_y == label)[: args.test_per_class], args.dest / "test" / name)
        counts["train"] += len(chosen) - len(val)
        counts["val"] += len(val)
        counts["test"] += min(args.test_per_class, int((test_y == label).sum()))
    print(f"{args.dest}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
