"""Build the embedded demo dataset: a class-balanced subset of Fashion-MNIST as PNG class folders.

Source: the original IDX files of Fashion-MNIST (Zalando Research, MIT licence), as installed by
Debian's package `dataset-fashion-mnist` under /usr/share/datasets/fashion-mnist/.

    apt-get install dataset-fashion-mnist
    python tools/make_fashion_subset.py --per-class 200

The first N images of each class, in IDX file order, are taken from the training file, so the
subset is reproducible without a seed; edgeclf splits it into train/val/test itself.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = [
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
]
SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEST = Path(__file__).resolve().parents[1] / "edgeclf" / "datasets" / "fashion_mnist_small"

LICENCE = """\
The images in this folder are a subset of Fashion-MNIST by Zalando Research
(https://github.com/zalandoresearch/fashion-mnist), distributed under the MIT licence:

The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    (magic,) = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200, help="images per class")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--dest", type=Path, default=DEST)
    args = parser.parse_args()

    images = read_idx(args.source / "train-images-idx3-ubyte.gz")
    labels = read_idx(args.source / "train-labels-idx1-ubyte.gz")
    if args.dest.exists():
        shutil.rmtree(args.dest)
    for label, name in enumerate(CLASSES):
        folder = args.dest / name
        folder.mkdir(parents=True)
        for index in np.flatnonzero(labels == label)[: args.per_class]:
            Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png", optimize=True)
    sources = "\n".join(
        f"{p.name} sha256={hashlib.sha256(p.read_bytes()).hexdigest()}"
        for p in sorted(args.source.glob("train-*-idx*-ubyte.gz"))
    )
    (args.dest / "LICENSE").write_text(LICENCE)
    (args.dest / "PROVENANCE.md").write_text(
        "# Provenance\n\n"
        f"Made by `python tools/make_fashion_subset.py --per-class {args.per_class}` from the Fashion-MNIST\n"
        "training set (Debian package `dataset-fashion-mnist`). For each class, the first\n"
        f"{args.per_class} images of that class in IDX file order; the file name is the image's index in\n"
        "the IDX file. 28x28 grayscale, saved as PNG.\n\nSource files:\n\n```\n" + sources + "\n```\n"
    )
    total = sum(f.stat().st_size for f in args.dest.rglob("*") if f.is_file())
    print(f"wrote {args.per_class * len(CLASSES)} images to {args.dest} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
