"""The folder most users have: a few classes of a few dozen images, mixed JPEG and PNG, some broken.

DEST/<class>/ for the first --classes classes of the embedded Fashion-MNIST subset
(edgeclf/datasets/fashion_mnist_small), --per-class images each (every third saved as JPEG), then
--corrupt broken files spread over the classes (a truncated JPEG, an empty file, text named .png).
With the default 6 x 60 and the default 70/15/15 split: about 41-42 training, 9 validation and 9
test images per class, as in issue 20's probe.

    python tools/make_small_folder.py /tmp/small6                    # 6 classes x 60, 3 corrupt files
    python tools/make_small_folder.py /tmp/small6 --per-class 30 --classes 4
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from edgeclf.demo import embedded_dataset

CLASSES = ["ankle_boot", "bag", "coat", "dress", "pullover", "sandal", "shirt", "sneaker", "t-shirt_top", "trouser"]


def make(dest: Path, classes: int = 6, per_class: int = 60, corrupt: int = 3) -> Path:
    dest = Path(dest)
    source = embedded_dataset()
    names = CLASSES[:classes]
    for name in names:
        (dest / name).mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(sorted((source / name).glob("*.png"))[:per_class]):
            if i % 3 == 2:
                Image.open(path).convert("RGB").save(dest / name / f"{path.stem}.jpg", quality=92)
            else:
                shutil.copy(path, dest / name / path.name)
    broken = [
        ("broken.jpg", lambda p: p.write_bytes(next((dest / names[0]).glob("*.jpg")).read_bytes()[:200])),
        ("empty.jpg", lambda p: p.write_bytes(b"")),
        ("notes.png", lambda p: p.write_text("not a picture\n")),
    ]
    for i in range(corrupt):
        file_name, write = broken[i % len(broken)]
        write(dest / names[i % len(names)] / f"{i}_{file_name}")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--corrupt", type=int, default=3)
    args = parser.parse_args()
    print(make(args.dest, args.classes, args.per_class, args.corrupt))


if __name__ == "__main__":
    main()
