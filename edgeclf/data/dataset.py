"""Find, check and split a folder of labelled images; write and read its manifest (dataset.json).

A data folder is either one sub-folder per class, or train/ val/ (and optionally test/) folders
that each hold one sub-folder per class. Class names are folder names; sorted, they are the label
order. Every file is decoded once before training: files that cannot be used are skipped and
reported with a reason; hidden files and files outside class folders are ignored (and listed).
No TensorFlow here.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeclf.core.bounded import BoundedReadError, expect_object, read_json
from edgeclf.core.config import SplitConfig
from edgeclf.core.errors import DataError
from edgeclf.core.images import EXTENSIONS, check_image, load_image
from edgeclf.core.printable import printable
from edgeclf.data.class_weights import imbalance
from edgeclf.runtime.integrity import file_sha256

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
MANIFEST_VERSION = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRecord:
    path: str  # relative to the data folder, POSIX separators
    split: str
    label: int
    label_name: str
    sha256: str


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class Dataset:
    root: Path
    classes: list[str]
    records: list[ImageRecord]
    layout: str  # "class-folders" (split here) or "presplit"
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: list[SkippedFile] = field(default_factory=list)
    split_fractions: dict[str, float] | None = None
    seed: int | None = None
    duplicates: list[dict] = field(default_factory=list)  # identical files across classes or splits
    pack: str | None = None  # set when the images are read from a pack (edgeclf.data.packed), not from root

    def batches(self, name: str, size: int, batch: int, positions: list[int] | None = None) -> Iterator[np.ndarray]:
        """uint8 batches [<=batch,S,S,3] of a split's images through the shared preprocessing, in the
        manifest's order (or only those at `positions` within the split, in that order), decoded
        from the data folder. A packed dataset is read through edgeclf.data.reader.split_batches."""
        if self.pack is not None:
            raise DataError(f"{self.pack}: a packed dataset; read it with edgeclf.data.reader.split_batches")
        records = self.split(name)
        chosen = [records[i] for i in positions] if positions is not None else records
        for start in range(0, len(chosen), batch):
            yield np.stack([load_image(self.root / r.path, size) for r in chosen[start : start + batch]])

    def split(self, name: str) -> list[ImageRecord]:
        return [r for r in self.records if r.split == name]

    def files_and_labels(self, name: str) -> tuple[list[str], list[int]]:
        records = self.split(name)
        return [str(self.root / r.path) for r in records], [r.label for r in records]

    def counts(self) -> dict[str, dict[str, int]]:
        tally = Counter((r.split, r.label_name) for r in self.records)
        return {s: {c: tally[(s, c)] for c in self.classes} for s in SPLITS if any(tally[(s, c)] for c in self.classes)}

    def to_json(self) -> dict:
        return {
            "version": MANIFEST_VERSION,
            "root": str(self.root),
            "layout": self.layout,
            "split_fractions": self.split_fractions,
            "seed": self.seed,
            "classes": self.classes,
            "counts": self.counts(),
            "files": [asdict(r) for r in self.records],
            "skipped": [asdict(s) for s in self.skipped],
            "ignored": [asdict(s) for s in self.ignored],
            "duplicates": self.duplicates,
            "imbalance": imbalance(self.counts().get("train", {})),
            **({"pack": self.pack} if self.pack else {}),
        }

    @classmethod
    def from_json(cls, data: dict, root: Path | None = None) -> Dataset:
        return cls(
            root=Path(root or data["root"]),
            classes=list(data["classes"]),
            records=[ImageRecord(**r) for r in data["files"]],
            layout=data["layout"],
            skipped=[SkippedFile(**s) for s in data["skipped"]],
            ignored=[SkippedFile(**s) for s in data["ignored"]],
            split_fractions=data.get("split_fractions"),
            seed=data.get("seed"),
            duplicates=list(data.get("duplicates", [])),
            pack=data.get("pack"),
        )

    @classmethod
    def load(cls, manifest: Path, root: Path | None = None) -> Dataset:
        try:  # a dataset.json of millions of images is tens of MB
            data = expect_object(read_json(manifest, 1024 * 2**20), str(manifest))
        except BoundedReadError as exc:
            raise DataError(f"{exc}; run edgeclf train (or data pack) again") from None
        return cls.from_json(data, root)


def training_order(count: int, seed: int) -> list[int]:
    """The seeded permutation applied to the training file list before decoding and caching (the
    pipeline and the pack's training shards both use it: it lives beside the split)."""
    return np.random.default_rng(seed).permutation(count).tolist()


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__MACOSX")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p.name))


def _walk_files(folder: Path) -> Iterable[tuple[Path, bool]]:
    """(file, hidden) for every file under folder, recursively, in sorted order."""
    for dirpath, dirnames, filenames in os.walk(folder):
        hidden_dir = any(_is_hidden(part) for part in Path(dirpath).relative_to(folder).parts)
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name, hidden_dir or _is_hidden(name)


def _check(path: Path) -> tuple[str | None, str | None]:
    """(sha256, None) for a usable image, (None, reason) otherwise."""
    if path.suffix.lower() not in EXTENSIONS:
        return None, f"not an image file (extension '{path.suffix or '(none)'}')"
    try:
        reason = check_image(path)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    return (None, reason) if reason else (file_sha256(path), None)


def _find_split_folders(root: Path) -> dict[str, Path]:
    found = {}
    names = {p.name.lower(): p for p in _visible_dirs(root)}
    for split, aliases in SPLIT_FOLDERS.items():
        for alias in aliases:
            if alias in names:
                found[split] = names[alias]
                break
    return found


def discover(
    root: Path,
    split: SplitConfig,
    seed: int,
    duplicates: str,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Find the classes and images under root, check every image (progress(done, total) as they
    are checked), and split them (or keep the folder's own splits). Identical files (same sha256)
    in two classes (label noise) or two splits (leakage) are listed in `duplicates` and logged
    (data.duplicates: "warn"); with "drop" the conflicting copies are left out (see
    find_duplicates). Raises DataError naming the folder and what to do."""
    root = Path(root)
    presplit, candidates, ignored, class_names = _layout(root)
    results = _check_all([f for _, _, f in candidates], workers, progress)
    pairs = list(zip(candidates, results, strict=True))
    skipped = [SkippedFile(_rel(f, root), reason) for (_, _, f), (_, reason) in pairs if reason]
    good = [(s, c, f, sha) for (s, c, f), (sha, _) in pairs if sha]
    classes = _usable_classes(root, class_names, good)
    index = {c: i for i, c in enumerate(classes)}
    if presplit:
        records = [ImageRecord(_rel(f, root), s, index[c], c, sha) for s, c, f, sha in good]
        fractions = None
    else:
        records = _stratified_split(root, good, index, split, seed)
        fractions = split.model_dump()
    records.sort(key=lambda r: (SPLITS.index(r.split), r.label, r.path))
    found, dropped = find_duplicates(records)
    _warn_duplicates(root, found, duplicates)
    if duplicates == "drop" and dropped:
        records = [r for r in records if r.path not in dropped]
        skipped += [SkippedFile(path, reason) for path, reason in sorted(dropped.items())]
    layout = "presplit" if presplit else "class-folders"
    dataset = Dataset(root, classes, records, layout, skipped, ignored, fractions, seed, found)
    _warn_imbalance(root, dataset)
    return dataset


def _layout(root: Path) -> tuple[bool, list[tuple[str, str, Path]], list[dict], set[str]]:
    """(whether root has its own train/ val/ (test/) folders, the candidate (split, class, file)
    triples, the entries ignored, the class names training sees). Raises DataError for a folder
    that is missing, empty, or split without val/ or with classes train/ lacks."""
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"data folder {root} is not a folder")
    split_dirs = _find_split_folders(root)
    presplit = "train" in split_dirs
    if presplit and "val" not in split_dirs:
        raise DataError(f"data folder {root} has train/ but no val/: add val/ (and test/), or use one folder per class")
    candidates, ignored = _candidates(root, split_dirs if presplit else {"": root})
    class_names = {c for s, c, _ in candidates if s in ("", "train")}
    extra = sorted({c for s, c, _ in candidates} - class_names)
    if presplit and extra:
        raise DataError(f"data folder {root}: class(es) {', '.join(extra)} appear in val/ or test/ but not in train/")
    if not candidates:
        raise DataError(f"data folder {root} is empty: expected one sub-folder of images per class")
    return presplit, candidates, ignored, class_names


def _warn_duplicates(root: Path, found: list[dict], duplicates: str) -> None:
    if not found:
        return
    classes_n = sum(d["kind"] == "classes" for d in found)
    if duplicates == "drop":
        then = "their conflicting copies are left out (data.duplicates: drop)"
    else:
        then = "data.duplicates: drop leaves them out"
    log.warning(
        f"data folder {root}: {classes_n} content(s) appear in two classes (label noise) and "
        f"{len(found) - classes_n} in two splits (leakage); listed in dataset.json 'duplicates'; {then}"
    )


def _warn_imbalance(root: Path, dataset: Dataset) -> None:
    balance = imbalance(dataset.counts().get("train", {}))
    if balance and balance["imbalanced"]:
        log.warning(
            f"data folder {root}: class {balance['largest']['class']} has {balance['ratio']:.1f}x the training images "
            f"of {balance['smallest']['class']} ({balance['largest']['images']} vs {balance['smallest']['images']}); "
            "train.class_weights: balanced weights the loss so that every class counts the same"
        )


def find_duplicates(records: list[ImageRecord]) -> tuple[list[dict], dict[str, str]]:
    """([{"sha256", "kind": "classes" | "splits", "files": [path, ...]}], {path: why it would be
    dropped}). A content in two classes is label noise: every copy is dropped. A content in two
    splits of one class leaks: the copy in the earliest split (train, val, test) is kept."""
    groups: dict[str, list[ImageRecord]] = {}
    for record in records:
        groups.setdefault(record.sha256, []).append(record)
    found, dropped = [], {}
    for digest, group in groups.items():
        if len(group) < 2:
            continue
        files = [r.path for r in group]
        if len({r.label for r in group}) > 1:
            found.append({"sha256": digest, "kind": "classes", "files": files})
            names = ", ".join(sorted({r.label_name for r in group}))
            dropped |= {r.path: f"identical file in classes {names} (label noise)" for r in group}
        elif len({r.split for r in group}) > 1:
            found.append({"sha256": digest, "kind": "splits", "files": files})
            keep = min(group, key=lambda r: (SPLITS.index(r.split), r.path))
            dropped |= {
                r.path: f"identical to {keep.path} in {keep.split} (would leak across splits)"
                for r in group
                if r.split != keep.split
            }
    return found, dropped


def _candidates(root: Path, sources: dict[str, Path]) -> tuple[list[tuple[str, str, Path]], list[SkippedFile]]:
    """([(split or "", class, file)] for every visible file in a class folder, [ignored entries]:
    hidden files and anything outside class folders)."""
    candidates: list[tuple[str, str, Path]] = []
    ignored: list[SkippedFile] = []
    real = root.resolve()
    if "" not in sources:  # presplit: only the split folders belong at the top
        ignored += _loose_entries(root, root, keep=set(sources.values()))
    for split_name, base in sources.items():
        if not _inside(base, real):
            ignored.append(SkippedFile(_rel(base, root), OUTSIDE))
            continue
        ignored += _loose_entries(base, root, keep=set(_visible_dirs(base)))
        for class_dir in _visible_dirs(base):
            if not _inside(class_dir, real):  # a link to / made train walk the whole filesystem
                ignored.append(SkippedFile(_rel(class_dir, root), OUTSIDE))
                continue
            check_class_name(class_dir.name, class_dir)
            for file, hidden in _walk_files(class_dir):
                if hidden:
                    ignored.append(SkippedFile(_rel(file, root), "hidden"))
                elif file.is_symlink() and not _inside(file, real):
                    ignored.append(SkippedFile(_rel(file, root), OUTSIDE))
                else:
                    candidates.append((split_name, class_dir.name, file))
    outside = [s.path for s in ignored if s.reason == OUTSIDE]
    if outside:
        shown = ", ".join(outside[:3]) + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")
        log.warning(f"data folder {root}: {len(outside)} link(s) leading outside it not followed ({shown})")
    return candidates, ignored


OUTSIDE = "a link leading outside the data folder: not followed"


def _inside(path: Path, real_root: Path) -> bool:
    """True when path, its links resolved, lies inside the data folder."""
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a link loop
        return False


def check_class_name(name: str, folder: Path) -> None:
    """A class name becomes a label in labels.txt, metadata and every report: no control, line
    separator or bidi characters (a newline gave labels.txt 4 lines for 3 classes; ESC sequences
    reached the terminal). Raises DataError naming the folder."""
    if printable(name) != name:
        raise DataError(
            f"class folder {printable(folder)}: its name holds a control or bidirectional character "
            f"({printable(name)}); rename the folder"
        )


def _usable_classes(root: Path, class_names: set[str], good: list[tuple]) -> list[str]:
    """The sorted class names (the label order); every class folder must hold a readable image."""
    per_class = Counter(c for _, c, _, _ in good)
    classes = sorted(c for c in class_names if per_class[c] > 0)
    if len(classes) < 2:
        found = ", ".join(classes) or "none"
        raise DataError(
            f"data folder {root}: found {len(classes)} class folder(s) with images ({found}); "
            "need at least 2, one sub-folder per class"
        )
    empty = sorted(c for c in class_names if per_class[c] == 0)
    if empty:
        raise DataError(f"data folder {root}: class folder(s) {', '.join(empty)} hold no readable images")
    return classes


def _loose_entries(folder: Path, root: Path, keep: set[Path]) -> list[SkippedFile]:
    """Entries of folder that are not kept sub-folders: hidden ones, and files outside class folders."""
    return [
        SkippedFile(_rel(entry, root), "hidden" if _is_hidden(entry.name) else "outside class folders")
        for entry in sorted(folder.iterdir())
        if entry not in keep
    ]


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _check_all(files: list[Path], workers: int | None, progress: Callable[[int, int], None] | None):
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(_check, files), start=1):
            results.append(result)
            if progress:
                progress(done, len(files))
    return results


def split_sizes(n: int, split: SplitConfig) -> tuple[int, int, int]:
    """(train, val, test) counts for a class of n images, by largest remainder: each within one
    image of its fraction. Tiny classes still get one image in every split whose fraction is above
    zero, taken from train."""
    exact = [n * split.train, n * split.val, n * split.test]
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(3), key=lambda i: (sizes[i] - exact[i], i))
    for i in by_remainder[: n - sum(sizes)]:
        sizes[i] += 1
    for i in (1, 2):
        if exact[i] > 0 and sizes[i] == 0:
            sizes[i], sizes[0] = 1, sizes[0] - 1
    return sizes[0], sizes[1], sizes[2]


def _stratified_split(root, good, index, split: SplitConfig, seed: int) -> list[ImageRecord]:
    records = []
    for name in index:
        files = sorted((f, sha) for _, c, f, sha in good if c == name)
        n_train, n_val, n_test = split_sizes(len(files), split)
        if n_train < 1:
            need = 2 + (split.test > 0)
            raise DataError(
                f"class '{name}' has {len(files)} image(s): too few to split "
                f"train/val/test {split.train:g}/{split.val:g}/{split.test:g}; it needs at least {need}"
            )
        # One generator per class, seeded by (seed, class name): a class's split does not
        # depend on the other classes or on the order the file system lists files in.
        random.Random(f"{seed}/{name}").shuffle(files)
        bounds = {"val": (0, n_val), "test": (n_val, n_val + n_test), "train": (n_val + n_test, len(files))}
        for split_name, (lo, hi) in bounds.items():
            records += [ImageRecord(_rel(f, root), split_name, index[name], name, sha) for f, sha in files[lo:hi]]
    return records
