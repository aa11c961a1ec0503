import numpy as np
import pytest

from edgeclf.config import ModelConfig
from edgeclf.errors import WeightsError
from edgeclf.models import build_classifier, set_trainable
from edgeclf.weights import imagenet_file_name, keras_cache_dir

keras = pytest.importorskip("tf_keras")


def cfg(name="mobilenet_v2", weights="none", alpha=0.35):
    return ModelConfig(name=name, alpha=alpha, dropout=0.2, weights=weights, scratch_bn_momentum=0.9)


@pytest.fixture
def no_network(monkeypatch):
    """Make Keras' download fail at once, as it does offline, without touching the network."""
    from tf_keras.src.utils import data_utils

    real = data_utils.get_file
    calls = []

    def offline_get_file(fname, origin=None, *args, cache_subdir="datasets", **kwargs):
        calls.append(fname)
        if (keras_cache_dir() / fname).exists():
            return real(fname, origin, *args, cache_subdir=cache_subdir, **kwargs)
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(data_utils, "get_file", offline_get_file)
    return calls


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "small_cnn"])
def test_every_backbone_is_one_flat_graph(name):
    built = build_classifier(cfg(name), num_classes=3, image_size=32)
    model = built.model
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "nested sub-model"
    assert [layer.name for layer in model.layers[:2]] == ["image", "normalize"]
    assert model.layers[-1].name == "head_dense"
    assert len(built.backbone_layers) == len(model.layers) - 5
    probs = model.predict(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32"), verbose=0)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # random backbone: BatchNorm momentum lowered so inference-mode statistics keep up
    moments = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert moments == {0.9}


def test_model_takes_raw_pixels_and_normalises_to_minus_one_one():
    model = build_classifier(cfg(), 3, 32).model
    normalize = keras.Model(model.input, model.get_layer("normalize").output)
    out = normalize(np.array([0, 127.5, 255], "float32").reshape(1, 1, 1, 3) * np.ones((1, 32, 32, 1), "float32"))
    assert np.allclose(out.numpy()[0, 0, 0], [-1, 0, 1])


def test_imagenet_offline_is_a_clear_error(no_network):
    with pytest.raises(WeightsError) as info:
        build_classifier(cfg(weights="imagenet"), 3, 96)
    message = str(info.value)
    name = imagenet_file_name("mobilenet_v2", 0.35, 96)
    assert name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert f"copy {name} into {keras_cache_dir()}" in message and "--weights /path/to/" in message


def test_auto_falls_back_to_random_loudly(no_network, caplog):
    built = build_classifier(cfg(weights="auto"), 3, 96)
    assert built.weights.source == "random" and not built.weights.pretrained
    assert "imagenet unavailable" in built.weights.note
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "edgeclf.models"]
    assert any("RANDOM" in line for line in warnings)


def _fake_imagenet_file(tmp_path, alpha=0.35, size=96):
    """A no-top MobileNetV2 weights file in the exact form Keras publishes (random values)."""
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None, alpha=alpha)
    for w in base.weights:
        w.assign(np.random.default_rng(0).normal(size=w.shape).astype("float32") * 0.01 + 0.5)
    path = tmp_path / imagenet_file_name("mobilenet_v2", alpha, size)
    base.save_weights(str(path))
    return path, base


def test_auto_uses_weights_in_keras_cache(tmp_path, no_network):
    path, base = _fake_imagenet_file(tmp_path)
    keras_cache_dir().mkdir(parents=True)
    path.rename(keras_cache_dir() / path.name)
    built = build_classifier(cfg(weights="auto"), 3, 96)
    assert built.weights.source == "imagenet" and built.weights.pretrained
    np.testing.assert_allclose(
        built.model.get_layer("Conv1").get_weights()[0], base.get_layer("Conv1").get_weights()[0]
    )
    moments = {layer.momentum for layer in built.model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert moments == {0.999}  # pretrained statistics keep Keras' momentum


def test_local_h5_and_earlier_run_weights(tmp_path):
    path, base = _fake_imagenet_file(tmp_path)
    from_file = build_classifier(cfg(weights=str(path)), 3, 96)
    assert from_file.weights.source == "file"
    np.testing.assert_allclose(
        from_file.model.get_layer("Conv1").get_weights()[0], base.get_layer("Conv1").get_weights()[0]
    )
    run = tmp_path / "run"
    run.mkdir()
    from_file.model.save(str(run / "model.keras"))
    from_run = build_classifier(cfg(weights=str(run)), 5, 96)
    assert from_run.weights.source == "run" and from_run.weights.pretrained
    np.testing.assert_allclose(
        from_run.model.get_layer("Conv_1").get_weights()[0], base.get_layer("Conv_1").get_weights()[0]
    )
    with pytest.raises(WeightsError, match="other shapes|match"):
        build_classifier(cfg(weights=str(run), alpha=0.5), 3, 96)


@pytest.mark.parametrize("value, message", [("missing.h5", "no such file"), ("imagenet", "small_cnn has no ImageNet")])
def test_weights_errors(value, message):
    with pytest.raises(WeightsError, match=message):
        build_classifier(cfg("small_cnn", weights=value), 3, 32)


def test_fine_tune_unfreezes_top_layers_but_not_batchnorm(tmp_path):
    path, _ = _fake_imagenet_file(tmp_path)
    built = build_classifier(cfg(weights=str(path)), 3, 96)
    assert set_trainable(built, "head", 20) == 0
    assert all(not built.model.get_layer(n).trainable for n in built.backbone_layers)
    assert built.model.get_layer("head_dense").trainable
    count = set_trainable(built, "fine_tune", 20)
    top = built.backbone_layers[-20:]
    trainable = [n for n in built.backbone_layers if built.model.get_layer(n).trainable]
    assert set(trainable) <= set(top) and len(trainable) == count > 0
    assert all(isinstance(built.model.get_layer(n), keras.layers.BatchNormalization) for n in set(top) - set(trainable))


def test_mobilenet_v2_macs_come_from_the_published_table():
    from edgeclf.models import mobilenet_v2_mmacs

    assert mobilenet_v2_mmacs(1.0, 224) == 300 and mobilenet_v2_mmacs(0.35, 96) == 11
    assert mobilenet_v2_mmacs(0.35, 64) == pytest.approx(59 * (64 / 224) ** 2)  # not in the table: area-scaled
    assert mobilenet_v2_mmacs(0.6, 224) is None
