"""Training images/s of `edgeclf train` against a plain, hand-written `model.fit` of the same model
on the same tf.data input, and the input pipeline alone.

Fresh processes on the same folder and config (fine-tune phase off, EPOCHS epochs):

- edgeclf: `edgeclf.training.train.train` as the command runs it (checkpoint, early stopping, schedule,
  PreciseBN and validation each epoch). Its history.csv gives per epoch the training steps alone
  (`train_seconds`, until validation begins) and the whole epoch (`seconds`).
- plain: `build_classifier` + `make_dataset` (edgeclf's own tf.data pipeline, disk cache) and
  `model.compile(Adam, categorical cross-entropy)` + `model.fit(train_ds, epochs=EPOCHS)`, no
  callbacks but a timer, no validation.
- input: the same training pipeline iterated for one epoch with nothing consuming it.

edgeclf trains with TensorFlow's op determinism on (`train.deterministic: true`, for runs that
repeat exactly); a plain model.fit does not. Both are measured both ways ("-deterministic" and
"-nondeterministic") so that the cost of determinism is apart from edgeclf's own.

With --packed the folder is first packed (`edgeclf data pack`, PNG, 8 training shards) and both sides
train on the pack: edgeclf as `edgeclf train PACK` runs it, the plain side with the pipeline a user
would write from TensorFlow's TFRecord guide (shard files interleaved, parse, decode_png, one-hot,
shuffle, batch, edgeclf's augmentation layers, prefetch) and no edgeclf code but the model builder.

Images/s are the median over epochs 2..EPOCHS (epoch 1 decodes and fills the cache).

    python tools/make_fashion_folder.py /tmp/f10k --per-class 1000 --val-fraction 0.1 --test-per-class 100
    python tools/bench_train_throughput.py /tmp/f10k --epochs 4 --out docs/benchmarks/train_throughput.json
    python tools/bench_train_throughput.py /tmp/f10k --epochs 4 --packed \
        --out docs/benchmarks/train_throughput_packed.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


KINDS = ("edgeclf-deterministic", "edgeclf-nondeterministic", "plain-nondeterministic", "plain-deterministic", "input")


def overrides(args) -> dict:
    return {
        "model.name": "mobilenet_v2",
        "model.alpha": args.alpha,
        "model.weights": "none",
        "data.image_size": args.size,
        "train.epochs": args.epochs,
        "train.fine_tune_epochs": 0,
        "train.early_stopping_patience": args.epochs + 1,
        "train.deterministic": args.worker.endswith("-deterministic"),
    }


def edgeclf_worker(args, out: Path) -> dict:
    from edgeclf.core.config import load_config
    from edgeclf.training.train import prepare, train

    cfg = load_config(overrides=overrides(args))
    data = prepare(args.pack or args.folder, out, cfg, overwrite=True)
    started = time.perf_counter()
    train(data, out, cfg, overwrite=True)
    rows = list(csv.DictReader((out / "history.csv").open()))
    return {
        "images": len(data.split("train")),
        "wall_seconds": time.perf_counter() - started,
        "train_seconds": [float(r["train_seconds"]) for r in rows],
        "epoch_seconds": [float(r["seconds"]) for r in rows],
    }


def plain_worker(args, out: Path, input_only: bool) -> dict:
    import tensorflow as tf
    import tf_keras as keras

    from edgeclf.core.config import load_config
    from edgeclf.data.dataset import discover
    from edgeclf.data.pipeline import build_augmenter, make_dataset
    from edgeclf.training.models import build_classifier

    cfg = load_config(overrides=overrides(args))
    keras.utils.set_random_seed(cfg.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    data = discover(args.folder, cfg.data.split, cfg.seed, cfg.data.duplicates)
    files, labels = data.files_and_labels("train")
    out.mkdir(parents=True, exist_ok=True)
    if args.pack:
        ds = plain_packed_dataset(args.pack, len(data.classes), cfg, build_augmenter(cfg.augment, cfg.seed))
    else:
        ds = make_dataset(
            files,
            labels,
            len(data.classes),
            cfg.data,
            training=True,
            seed=cfg.seed,
            augment=build_augmenter(cfg.augment, cfg.seed),
            cache_file=out / "cache",
        )
    if input_only:
        seconds = []
        for _ in range(args.epochs):
            started = time.perf_counter()
            for _batch in ds:
                pass
            seconds.append(time.perf_counter() - started)
        return {"images": len(files), "train_seconds": seconds}
    model = build_classifier(cfg.model, len(data.classes), cfg.data.image_size).model
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.train.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy"],
    )

    class Timer(keras.callbacks.Callback):
        seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    timer = Timer()
    model.fit(ds, epochs=args.epochs, verbose=0, callbacks=[timer])
    return {"images": len(files), "train_seconds": timer.seconds}


def plain_packed_dataset(pack: str, num_classes: int, cfg, augment):
    """The TFRecord input a user would write by hand (no edgeclf code)."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(f"{pack}/train-*.tfrecord"))
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_png(example["image"], channels=3)
        return tf.ensure_shape(image, (cfg.data.image_size, cfg.data.image_size, 3)), tf.one_hot(
            example["label"], num_classes
        )

    ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=cfg.seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=8, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).shuffle(cfg.data.shuffle_buffer, seed=cfg.seed)
    ds = ds.batch(cfg.data.batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    ds = ds.map(
        lambda x, y: (tf.clip_by_value(augment(x, training=True), 0.0, 255.0), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def run_worker(kind: str, args) -> dict:
    command = [
        sys.executable,
        __file__,
        str(args.folder),
        "--worker",
        kind,
        "--epochs",
        str(args.epochs),
        "--alpha",
        str(args.alpha),
        "--size",
        str(args.size),
    ]
    if args.pack:
        command += ["--pack", args.pack]
    proc = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{kind} failed: {proc.stderr.strip().splitlines()[-5:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--packed", action="store_true", help="pack the folder and train both sides on the pack")
    parser.add_argument("--pack", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        with tempfile.TemporaryDirectory(prefix="edgeclf-throughput-") as tmp:
            if args.worker.startswith("edgeclf"):
                result = edgeclf_worker(args, Path(tmp) / "run")
            else:
                result = plain_worker(args, Path(tmp) / "plain", input_only=args.worker == "input")
        print(json.dumps(result))
        return
    import numpy as np

    from edgeclf.runtime.machine import fingerprint

    with tempfile.TemporaryDirectory(prefix="edgeclf-throughput-pack-") as tmp:
        if args.packed:
            from edgeclf.core.config import PackConfig, load_config
            from edgeclf.data.packed import pack
            from edgeclf.data.prepare import prepare_folder

            cfg = load_config(overrides={"data.image_size": args.size})
            args.pack = str(Path(tmp) / "pack")
            pack(prepare_folder(args.folder, cfg), args.pack, args.size, PackConfig(shards=8, encoding="png"), cfg.seed)
        results = {kind: run_worker(kind, args) for kind in KINDS}

    def rate(result: dict, key: str = "train_seconds") -> float:
        return float(result["images"] / np.median(result[key][1:]))

    document = {
        "command": "python tools/bench_train_throughput.py " + " ".join(sys.argv[1:]),
        "machine": fingerprint(None, "cpu"),
        "model": {"name": "mobilenet_v2", "alpha": args.alpha, "size": args.size, "weights": "random"},
        "input": "a pack (PNG, 8 training shards)" if args.packed else "the image folder (edgeclf's disk cache)",
        "images_per_second": {
            **{f"{kind}_train_steps": rate(results[kind]) for kind in KINDS},
            **{f"{kind}_whole_epoch": rate(results[kind], "epoch_seconds") for kind in KINDS[:2]},
        },
        "raw": results,
    }
    ips = document["images_per_second"]
    document["ratio_edgeclf_to_plain"] = {
        mode: ips[f"edgeclf-{mode}_train_steps"] / ips[f"plain-{mode}_train_steps"]
        for mode in ("deterministic", "nondeterministic")
    }
    document["ratio_edgeclf_default_to_plain_default"] = (
        ips["edgeclf-deterministic_train_steps"] / ips["plain-nondeterministic_train_steps"]
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    keys = ("images_per_second", "ratio_edgeclf_to_plain", "ratio_edgeclf_default_to_plain_default")
    print(json.dumps({k: document[k] for k in keys}, indent=2))


if __name__ == "__main__":
    main()
