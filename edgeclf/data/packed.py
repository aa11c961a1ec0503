"""Packed datasets: a data folder decoded and resized once into sharded TFRecord files.

`edgeclf data pack DATA_DIR --out PACK` checks and splits the folder as `train` would, decodes every
image through the shared preprocessing (edgeclf.core.images.load_image) at the run's image size, and
writes per split `SPLIT-00000-of-0000N.tfrecord` shards of tf.train.Example records:
  image     the uint8 pixels, PNG-encoded (lossless: decoding gives back the same pixels) or raw
  label     the class index
  position  the image's position in its split's list in the manifest
plus `pack.json`, the manifest: the dataset.json of the folder (classes, every file with its split,
label and sha256: the source of truth for the split), the image size, the encoding and each shard's
image count and byte size. pack.json is written last: a folder without it is not a pack.

The training shards hold the training images in a seeded random order (like the unpacked pipeline's
file list), so that every shard, and every stretch of one, is a uniform sample of the set. Paths
may be any filesystem TensorFlow reads (local, gs://, s3:// through tf.io.gfile); packing to a local
folder is atomic (a staging folder renamed at the end), to a remote one pack.json is the commit.

Reading needs TensorFlow (the training side); a device reads image folders, never packs.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from edgeclf import __version__
from edgeclf.core.bounded import BoundedReadError, excerpt, expect_object, loads_json, shorten
from edgeclf.core.config import PackConfig
from edgeclf.core.errors import DataError
from edgeclf.core.images import PREPROCESSING, load_image
from edgeclf.data.dataset import SPLITS, Dataset, training_order

log = logging.getLogger(__name__)

MANIFEST = "pack.json"
VERSION = 1
IMAGES_PER_SHARD = 1024  # --shards 0 (auto): about this many images per training shard
MAX_MANIFEST_BYTES = 512 * 1024 * 1024  # pack.json lists every file: refused above this before it is read
MAX_SHARDS = 4096
ENCODINGS = ("png", "raw")
DECODE_BATCH = 64  # images decoded at a time while packing


def is_remote(location: str | Path) -> bool:
    return "://" in str(location)


def join(location: str, name: str) -> str:
    return f"{str(location).rstrip('/')}/{name}"


def is_pack(location: str | Path) -> bool:
    """Whether location holds a pack.json (local or any filesystem TensorFlow reads)."""
    if not is_remote(location):
        return (Path(location) / MANIFEST).is_file()
    import tensorflow as tf

    return tf.io.gfile.exists(join(str(location), MANIFEST))


@dataclass
class PackResult:
    location: str
    images: int
    classes: list[str]
    image_size: int
    encoding: str
    shards: dict[str, int]  # split -> shard count
    bytes: int
    seconds: float


def shard_counts(dataset: Dataset, shards: int) -> dict[str, int]:
    """Shards per split: `shards` for the training split (0: about IMAGES_PER_SHARD images each),
    as many for val and test in proportion to their size (at least one each)."""
    train = len(dataset.split("train"))
    if shards <= 0:
        shards = math.ceil(train / IMAGES_PER_SHARD)
    shards = max(1, min(shards, MAX_SHARDS, train))
    counts = {}
    for split in SPLITS:
        n = len(dataset.split(split))
        if n:
            counts[split] = shards if split == "train" else max(1, min(n, math.ceil(shards * n / train)))
    return counts


def _encode(pixels: np.ndarray, encoding: str) -> bytes:
    if encoding == "raw":
        return pixels.tobytes()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _example(pixels: np.ndarray, label: int, position: int, encoding: str) -> bytes:
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_encode(pixels, encoding)])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "position": tf.train.Feature(int64_list=tf.train.Int64List(value=[position])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def pack(
    dataset: Dataset,
    out: str | Path,
    image_size: int,
    options: PackConfig,
    seed: int,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PackResult:
    """Write dataset (from dataset.discover) as a pack at out, with options.shards training shards
    and options.encoding (pack.*); `seed` orders the training shards (the run's seed). Raises
    DataError for an unknown encoding or an out that already holds something (without overwrite)."""
    import time

    if options.encoding not in ENCODINGS:
        raise DataError(f"--encoding {options.encoding}: unknown; use one of {', '.join(ENCODINGS)}")
    started = time.perf_counter()
    out = str(out)
    counts = shard_counts(dataset, options.shards)
    counter = _Progress(sum(len(dataset.split(s)) for s in counts), progress)
    with ThreadPoolExecutor(workers) as pool:
        write = partial(_write_pack, dataset, counts, image_size, options.encoding, seed, pool, counter)
        if is_remote(out):
            _clear_remote(out, overwrite)
            described = write(out)
        else:
            from edgeclf.core.atomic import StagedDirectory, check_apart, check_out_dir

            check_apart(dataset.root, Path(out))
            check_out_dir(Path(out), overwrite)
            with StagedDirectory(Path(out)) as stage:
                described = write(str(stage.path))
    size = sum(shard["bytes"] for listed in described.values() for shard in listed)
    shards = {split: len(listed) for split, listed in described.items()}
    return PackResult(
        out, counter.total, dataset.classes, image_size, options.encoding, shards, size, time.perf_counter() - started
    )


@dataclass
class _Progress:
    """Images written so far, reported to the caller's progress(done, total)."""

    total: int
    callback: Callable[[int, int], None] | None
    done: int = 0

    def advance(self, images: int) -> None:
        self.done += images
        if self.callback:
            self.callback(self.done, self.total)


def _clear_remote(out: str, overwrite: bool) -> None:
    """A remote out is written in place: refuse a pack there unless overwrite, and remove its
    pack.json first (the commit), so that a half-replaced pack is no pack."""
    import tensorflow as tf

    if tf.io.gfile.exists(join(out, MANIFEST)):
        if not overwrite:
            raise DataError(f"--out {out}: already holds a pack; pass --overwrite to replace it")
        tf.io.gfile.remove(join(out, MANIFEST))
    tf.io.gfile.makedirs(out)


def _write_pack(
    dataset: Dataset,
    counts: dict[str, int],
    image_size: int,
    encoding: str,
    seed: int,
    pool,
    counter: _Progress,
    folder: str,
) -> dict[str, list[dict]]:
    """Every split's shards into folder, then pack.json (last: it commits the pack); returns the
    shards described per split."""
    described = {}
    for split, n_shards in counts.items():
        records = dataset.split(split)
        order = training_order(len(records), seed) if split == "train" else list(range(len(records)))
        described[split] = []
        for shard, chunk in enumerate(np.array_split(np.array(order, dtype=np.int64), n_shards)):
            name = f"{split}-{shard:05d}-of-{n_shards:05d}.tfrecord"
            size = _write_shard(join(folder, name), dataset, records, chunk, image_size, encoding, pool, counter)
            described[split].append({"file": name, "images": len(chunk), "bytes": size})
    _write_manifest(
        folder,
        {
            "version": VERSION,
            "format": "edgeclf-pack",
            "edgeclf_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "image_size": image_size,
            "encoding": encoding,
            "seed": seed,
            "preprocessing": PREPROCESSING,
            "shards": described,
            "dataset": dataset.to_json(),
        },
    )
    return described


def _write_shard(
    path: str,
    dataset: Dataset,
    records: list,
    positions: np.ndarray,
    image_size: int,
    encoding: str,
    pool,
    counter: _Progress,
) -> int:
    """One TFRecord shard of the images at `positions` of a split, decoded DECODE_BATCH at a time
    (bounded memory) on the pool's threads; returns its size in bytes."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for start in range(0, len(positions), DECODE_BATCH):
            batch = [int(i) for i in positions[start : start + DECODE_BATCH]]
            paths = [dataset.root / records[i].path for i in batch]
            for position, pixels in zip(batch, pool.map(partial(load_image, size=image_size), paths), strict=True):
                writer.write(_example(pixels, records[position].label, position, encoding))
            counter.advance(len(batch))
    return tf.io.gfile.stat(path).length


def _write_manifest(folder: str, manifest: dict) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(join(folder, MANIFEST + ".partial"), "w") as f:
        f.write(json.dumps(manifest, indent=1))
    tf.io.gfile.rename(join(folder, MANIFEST + ".partial"), join(folder, MANIFEST), overwrite=True)


@dataclass
class Pack:
    """An opened pack: where it is, its manifest's dataset, image size, encoding and shards."""

    location: str
    dataset: Dataset
    image_size: int
    encoding: str
    shards: dict[str, list[dict]]

    def files(self, split: str) -> list[str]:
        return [join(self.location, s["file"]) for s in self.shards.get(split, [])]

    def check_size(self, image_size: int) -> None:
        """Training reads the pack at its own size: a DataError saying how to agree otherwise."""
        if image_size != self.image_size:
            raise DataError(
                f"{self.location}: packed at {self.image_size} px, data.image_size is {image_size}; "
                f"pass --image-size {self.image_size} or pack again with --image-size {image_size}"
            )


def open_pack(location: str | Path) -> Pack:
    """Read and check pack.json (bounded, field by field) and that every shard is there with its
    recorded size. Raises DataError naming the pack and what to do."""
    import tensorflow as tf

    location = str(location).rstrip("/") if is_remote(location) else str(Path(location).resolve())
    path = join(location, MANIFEST)
    if not tf.io.gfile.exists(path):
        raise DataError(
            f"{location}: no {MANIFEST}; not a packed dataset "
            "(or its packing was interrupted: run edgeclf data pack again)"
        )
    if tf.io.gfile.stat(path).length > MAX_MANIFEST_BYTES:
        raise DataError(f"{path}: over {MAX_MANIFEST_BYTES} bytes; not an edgeclf pack manifest")
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            manifest = expect_object(loads_json(f.read(), str(path), MAX_MANIFEST_BYTES), str(path))
        dataset, size, encoding, shards = _checked_manifest(manifest)
    except BoundedReadError as exc:
        raise DataError(f"{exc}; pack the folder again") from None
    except KeyError as exc:
        raise DataError(f"{path}: not a valid pack manifest (no {excerpt(exc.args[0])}); pack it again") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a valid pack manifest ({shorten(str(exc))}); pack it again") from None
    pack_ = Pack(location, dataset, size, encoding, shards)
    for split in shards:
        for s, file in zip(shards[split], pack_.files(split), strict=True):
            if not tf.io.gfile.exists(file) or tf.io.gfile.stat(file).length != s["bytes"]:
                raise DataError(f"{file}: missing or not the size {MANIFEST} records; pack the folder again")
    dataset.pack = location
    return pack_


def _checked_manifest(manifest: dict) -> tuple[Dataset, int, str, dict]:
    """(dataset, image size, encoding, shards) of a manifest, each field checked; ValueError,
    KeyError or TypeError naming the first one that is wrong."""
    if manifest.get("format") != "edgeclf-pack" or manifest.get("version") != VERSION:
        raise ValueError(f"format {manifest.get('format')!r} version {manifest.get('version')!r}")
    size, encoding, shards = manifest["image_size"], manifest["encoding"], manifest["shards"]
    if not isinstance(size, int) or not 32 <= size <= 4096:
        raise ValueError(f"image_size {size!r} (32..4096 expected)")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r}")
    if not isinstance(shards, dict) or sum(len(v) for v in shards.values()) > MAX_SHARDS * len(SPLITS):
        raise ValueError("shards must be a bounded object of lists")
    dataset = Dataset.from_json(manifest["dataset"])
    for split, listed in shards.items():
        if split not in SPLITS or sum(int(s["images"]) for s in listed) != len(dataset.split(split)):
            raise ValueError(f"the {split} shards do not hold the manifest's {split} images")
        for s in listed:
            if "/" in s["file"] or s["file"].startswith("."):
                raise ValueError(f"shard name {s['file']!r}")
    return dataset, size, encoding, shards


_FEATURES = ("image", "label", "position")


def _parse(serialized):
    """Serialized example -> (encoded image bytes, label, position)."""
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "position": tf.io.FixedLenFeature([], tf.int64),
    }
    example = tf.io.parse_single_example(serialized, spec)
    return tuple(example[k] for k in _FEATURES)


def _decoder(encoding: str, size: int):
    """(encoded image, label, position) -> (uint8 image [S,S,3], label, position)."""
    import tensorflow as tf

    def decode(image, label, position):
        if encoding == "png":
            image = tf.io.decode_png(image, channels=3)
        else:
            image = tf.reshape(tf.io.decode_raw(image, tf.uint8), (size, size, 3))
        return tf.ensure_shape(image, (size, size, 3)), label, position

    return decode


def records(pack_: Pack, split: str, *, training: bool = False, seed: int | None = None, keep=None, one_hot: int = 0):
    """tf.data of (uint8 image, label, position) for a split. In training the shard order is
    reshuffled every epoch (from `seed`, the run's: required then) and up to 8 shards are read
    interleaved; otherwise the shards are read in order, giving the split's images in the
    manifest's order (val and test are packed in order). keep: a predicate on (encoded image,
    label, position) applied before decoding. one_hot: (uint8 image, one-hot label of this many
    classes) instead, for training."""
    import tensorflow as tf

    files = pack_.files(split)
    if not files:
        raise DataError(f"{pack_.location}: the pack has no '{split}' images")
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        if seed is None:
            raise ValueError("records(training=True) needs the run's seed")
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        ds = ds.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), 8),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        ds = ds.flat_map(tf.data.TFRecordDataset)
    decode = _decoder(pack_.encoding, pack_.image_size)
    if one_hot:  # one map per record: parse, decode and encode the label together

        def example(record):
            image, label, _ = decode(*_parse(record))
            return image, tf.one_hot(label, one_hot)

        return ds.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if keep is None:
        return ds.map(lambda r: decode(*_parse(r)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(_parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).filter(keep)
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def read_split(
    dataset: Dataset, split: str, size: int | tuple[int, int], batch: int, positions: list[int] | None = None
) -> Iterator[np.ndarray]:
    """uint8 batches [<=batch,S,S,3] of a packed split's images in the manifest's order, or only
    those at `positions` (within the split), in that order."""
    pack_ = open_pack(dataset.pack)
    side = pack_.image_size
    if tuple(int(v) for v in np.broadcast_to(size, 2)) != (side, side):  # size: S or (H, W)
        raise DataError(f"{pack_.location}: packed at {side} px, the run reads {size}; pack again at the run's size")
    if positions is None:
        expected = 0
        for images, _, found in records(pack_, split).batch(batch).as_numpy_iterator():
            if found[0] != expected:  # the packed order is the manifest's: anything else is a damaged pack
                raise DataError(f"{pack_.location}: the '{split}' shards are not in the manifest's order; pack again")
            expected += len(found)
            yield images
        return
    import tensorflow as tf

    wanted = tf.constant(sorted(set(positions)), tf.int64)
    chosen = records(pack_, split, keep=lambda _image, _label, p: tf.reduce_any(tf.equal(wanted, p)))
    found = {int(p): image for image, _, p in chosen.as_numpy_iterator()}
    for start in range(0, len(positions), batch):
        yield np.stack([found[p] for p in positions[start : start + batch]])
