from pathlib import Path

import numpy as np
import pytest

from edgeclf.core.config import load_config
from edgeclf.core.images import load_image
from edgeclf.data.pipeline import build_augmenter, make_dataset
from tests.helpers import class_folders

pytest.importorskip("tensorflow")


def _files(tmp_path):
    root = class_folders(tmp_path / "d", ["bag", "sneaker"], 6)
    files = sorted(str(p) for p in root.rglob("*.png"))
    return files, [0 if "/bag/" in f else 1 for f in files]


@pytest.mark.parametrize("cache", ["disk", "memory", "none"])
def test_eval_pipeline_gives_the_shared_preprocessing_pixels(tmp_path, cache):
    files, labels = _files(tmp_path)
    data = load_config(overrides={"data.image_size": 32, "data.batch_size": 5, "data.cache": cache}).data
    ds = make_dataset(files, labels, 2, data, training=False, seed=1, cache_file=tmp_path / "cache")
    images, onehot = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=False)
    images, onehot = np.concatenate(images), np.concatenate(onehot)
    assert images.dtype == np.float32 and images.shape == (12, 32, 32, 3)
    expected = np.stack([load_image(f, 32) for f in files]).astype(np.float32)
    np.testing.assert_array_equal(images, expected)  # same order, same pixels as every runner
    np.testing.assert_array_equal(onehot.argmax(1), labels)


def test_augmentation_acts_on_training_batches_only(tmp_path):
    files, labels = _files(tmp_path)
    cfg = load_config(overrides={"data.image_size": 32, "data.batch_size": 12, "data.cache": "none"})
    augment = build_augmenter(cfg.augment, seed=1)
    assert [layer.__class__.__name__ for layer in augment.layers] == [
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "RandomContrast",
    ]
    train = next(iter(make_dataset(files, labels, 2, cfg.data, training=True, seed=1, augment=augment)))[0].numpy()
    plain = np.stack([load_image(f, 32) for f in files]).astype(np.float32)
    assert train.min() >= 0 and train.max() <= 255
    # shuffled and augmented: no training image equals any plain one
    assert not any(np.array_equal(t, p) for t in train for p in plain)
    # the layers are identity at inference
    np.testing.assert_array_equal(augment(plain, training=False).numpy(), plain)
    off = load_config(overrides={"augment.enabled": False}).augment
    assert build_augmenter(off, seed=1) is None


@pytest.mark.parametrize("cache", ["disk", "memory", "none"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_class_sorted_folder_larger_than_the_buffer_gives_mixed_batches(tmp_path, cache, seed):
    """Files are listed class by class; with a buffer far smaller than the set, the first batches
    must still hold every class in about equal shares (a buffer over class-sorted files gives
    batches of one class)."""
    classes = ["bag", "sneaker", "trouser", "sandal"]
    root = class_folders(tmp_path / "d", classes, 60)
    files = [str(p) for c in classes for p in sorted((root / c).glob("*.png"))]  # class-sorted, 240 files
    labels = [classes.index(Path(f).parent.name) for f in files]
    data = load_config(
        overrides={"data.image_size": 32, "data.batch_size": 16, "data.cache": cache, "data.shuffle_buffer": 20}
    ).data
    ds = make_dataset(files, labels, 4, data, training=True, seed=seed, cache_file=tmp_path / "cache")
    epochs = [[y.numpy().argmax(1) for _, y in ds] for _ in range(2)]
    first = np.concatenate(epochs[0][:4])  # the first 64 images of the first epoch
    counts = np.bincount(first, minlength=4)
    assert counts.min() >= 8 and counts.max() <= 24, (
        f"class histogram of the first 64 images: {counts} (16 each expected)"
    )
    for batch in epochs[0][:4]:
        assert np.bincount(batch, minlength=4).max() <= 10, f"a batch dominated by one class: {batch}"
    # every epoch sees every image once, in another order than the last
    assert sorted(np.concatenate(epochs[0]).tolist()) == sorted(labels)
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))
