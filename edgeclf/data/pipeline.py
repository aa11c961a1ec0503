"""tf.data input pipelines: parallel decode + resize (edgeclf.core.images, the shared preprocessing),
caching, shuffling, batching, augmentation (training only) and prefetching.

Images stay uint8 until they are batched; the disk cache lets folders larger than memory stream.
"""

from __future__ import annotations

from pathlib import Path

from edgeclf.core.config import AugmentConfig, DataConfig
from edgeclf.core.images import load_image
from edgeclf.data.dataset import training_order  # noqa: F401 (the order the pipeline applies)


def build_augmenter(cfg: AugmentConfig, seed: int):
    """Keras preprocessing layers for training-time augmentation, or None when switched off."""
    import tf_keras as keras

    if not cfg.enabled:
        return None
    layers = []
    if cfg.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotation:
        layers.append(keras.layers.RandomRotation(cfg.rotation, fill_mode="reflect", seed=seed + 1))
    if cfg.translation:
        layers.append(
            keras.layers.RandomTranslation(cfg.translation, cfg.translation, fill_mode="reflect", seed=seed + 2)
        )
    if cfg.zoom:
        layers.append(keras.layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed + 3))
    if cfg.contrast:
        layers.append(keras.layers.RandomContrast(cfg.contrast, seed=seed + 4))
    return keras.Sequential(layers, name="augment") if layers else None


def input_datasets(dataset, data: DataConfig, seed: int, augment, cache_dir: Path | None):
    """(training, validation) pipelines for a Dataset: from its pack when it is packed, else decoded
    from its folder, the decoded images cached under cache_dir (data.cache: disk) as configured."""
    common = dict(num_classes=len(dataset.classes), data=data, seed=seed)
    if dataset.pack is not None:
        from edgeclf.data.packed import open_pack

        pack = open_pack(dataset.pack)
        return (
            make_packed_dataset(pack, "train", training=True, augment=augment, **common),
            make_packed_dataset(pack, "val", training=False, **common),
        )
    files, labels = dataset.files_and_labels("train")
    cache = (lambda name: cache_dir / name) if cache_dir is not None else (lambda name: None)
    return (
        make_dataset(files, labels, training=True, augment=augment, cache_file=cache("train"), **common),
        make_dataset(*dataset.files_and_labels("val"), training=False, cache_file=cache("val"), **common),
    )


def make_dataset(
    files: list[str],
    labels: list[int],
    num_classes: int,
    data: DataConfig,
    *,
    training: bool,
    seed: int,
    augment=None,
    cache_file: Path | None = None,
):
    """(float32 images 0..255 [B,S,S,3], one-hot labels [B,C]) batches.

    Training order: files are listed class by class, and a shuffle buffer smaller than the set
    would then give batches of one or two classes (BatchNorm's batch statistics carry the class,
    and the model does not generalise). So the training file list is put in a seeded random order
    *before* decoding and caching: every stretch of the cache, and so every buffer's worth, is a
    uniform sample of the whole set. When the whole set fits the buffer, each epoch is a fresh
    uniform permutation; when it does not, the buffer re-mixes a different ~buffer-sized window
    each epoch (the cache on disk keeps one order, so that folders larger than memory stream).
    """
    import tensorflow as tf

    size = data.image_size
    if training:
        order = training_order(len(files), seed)
        files, labels = [files[i] for i in order], [labels[i] for i in order]

    def decode(path):
        image = tf.numpy_function(lambda p: load_image(p.decode(), size), [path], tf.uint8, stateful=False)
        image.set_shape((size, size, 3))
        return image

    ds = tf.data.Dataset.from_tensor_slices((files, labels))
    if training and data.cache == "none":  # nothing cached: a fresh uniform permutation of the names every epoch
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda p, y: (decode(p), tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if data.cache == "disk" and cache_file is not None:
        ds = ds.cache(str(cache_file))
    elif data.cache == "memory":
        ds = ds.cache()
    return _batches(ds, len(files), data, training=training, seed=seed, augment=augment)


def make_packed_dataset(
    pack, split: str, num_classes: int, data: DataConfig, *, training: bool, seed: int, augment=None
):
    """The same batches from a pack (edgeclf.data.packed): its shards are read (interleaved and in a
    reshuffled shard order when training) instead of files decoded; no cache is needed (the pixels
    are already decoded and resized; data.cache: memory still keeps them in memory)."""

    from edgeclf.data.packed import records

    pack.check_size(data.image_size)
    ds = records(pack, split, training=training, seed=seed, one_hot=num_classes)
    if data.cache == "memory":
        ds = ds.cache()
    return _batches(ds, len(pack.dataset.split(split)), data, training=training, seed=seed, augment=augment)


def _batches(ds, count: int, data: DataConfig, *, training: bool, seed: int, augment):
    """(uint8 image, one-hot) examples -> shuffled (training), batched float32, augmented (training),
    prefetched."""
    import tensorflow as tf

    if training:
        ds = ds.shuffle(min(data.shuffle_buffer, count), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(data.batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        ds = ds.map(
            lambda x, y: (tf.clip_by_value(augment(x, training=True), 0.0, 255.0), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
