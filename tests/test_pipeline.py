import numpy as np
import pytest

from edgeclf.config import load_config
from edgeclf.images import load_image
from edgeclf.pipeline import build_augmenter, make_dataset
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
    images, onehot = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    images, onehot = np.concatenate(images), np.concatenate(onehot)
    assert images.dtype == np.float32 and images.shape == (12, 32, 32, 3)
    expected = np.stack([load_image(f, 32) for f in files]).astype(np.float32)
    np.testing.assert_array_equal(images, expected)  # same order, same pixels as every runner
    np.testing.assert_array_equal(onehot.argmax(1), labels)


def test_augmentation_acts_on_training_batches_only(tmp_path):
    files, labels = _files(tmp_path)
    cfg = load_config(overrides={"data.image_size": 32, "data.batch_size": 12, "data.cache": "none"})
    augment = build_augmenter(cfg.augment, seed=1)
    assert [l.__class__.__name__ for l in augment.layers] == ["RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast"]
    train = next(iter(make_dataset(files, labels, 2, cfg.data, training=True, seed=1, augment=augment)))[0].numpy()
    plain = np.stack([load_image(f, 32) for f in files]).astype(np.float32)
    assert train.min() >= 0 and train.max() <= 255
    # shuffled and augmented: no training image equals any plain one
    assert not any(np.array_equal(t, p) for t in train for p in plain)
    # the layers are identity at inference
    np.testing.assert_array_equal(augment(plain, training=False).numpy(), plain)
    off = load_config(overrides={"augment.enabled": False}).augment
    assert build_augmenter(off, seed=1) is None
