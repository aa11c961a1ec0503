import numpy as np
import pytest

from edgeclf.core.config import ModelConfig
from edgeclf.core.errors import WeightsError
from edgeclf.training.models import build_classifier, set_trainable
from edgeclf.training.weights import imagenet_file_name, keras_cache_dir

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


@pytest.mark.parametrize(
    "name",  # the V3 builds take seconds each: the whole suite runs them, the fast one V2 and the CNN
    [
        "mobilenet_v2",
        pytest.param("mobilenet_v3_small", marks=pytest.mark.slow),
        pytest.param("mobilenet_v3_large", marks=pytest.mark.slow),
        "small_cnn",
    ],
)
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
    warnings = [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "edgeclf.training.models"
    ]
    assert any("RANDOM" in line and "tools/fetch_backbone.py" in line for line in warnings)  # names the way out


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


@pytest.mark.slow  # several seconds; the whole suite runs it
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
    with pytest.raises(WeightsError, match=r"layer block_1_project kernel has shape \(1, 1, 48, 8\) in the file"):
        build_classifier(cfg(weights=str(run), alpha=0.5), 3, 96)  # Conv1 has 16 filters at both widths


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
    from edgeclf.training.models import mobilenet_v2_mmacs

    assert mobilenet_v2_mmacs(1.0, 224) == 300 and mobilenet_v2_mmacs(0.35, 96) == 11
    assert mobilenet_v2_mmacs(0.35, 64) == pytest.approx(59 * (64 / 224) ** 2)  # not in the table: area-scaled
    assert mobilenet_v2_mmacs(0.6, 224) is None


def _random_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.5, 0.1, np.shape(w)).astype("float32") for w in model.get_weights()])


def _assert_backbone_equal(built, source_backbone):
    theirs = {layer.name: layer for layer in source_backbone.layers}
    for name in built.backbone_layers:
        mine = built.model.get_layer(name).get_weights()
        for a, b in zip(mine, theirs[name].get_weights(), strict=True):
            np.testing.assert_array_equal(a, np.asarray(b), err_msg=name)


@pytest.fixture(scope="module")
def foreign_files(tmp_path_factory):
    """The files users bring: a Keras 3 model with MobileNetV2 nested as one layer, saved as .h5 and
    as .keras; a tf_keras flat MobileNetV2 saved whole (.h5, .keras) and as no-top weights; a
    tf_keras model with the backbone nested. Random weights, so a copy by layer name is visible."""
    import keras as keras3

    folder = tmp_path_factory.mktemp("foreign")
    base3 = keras3.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35)
    inputs = keras3.Input((32, 32, 3))
    head = keras3.layers.Dense(19, activation="softmax")(keras3.layers.GlobalAveragePooling2D()(base3(inputs)))
    nested3 = keras3.Model(inputs, head)
    _random_weights(nested3, 1)
    nested3.save(folder / "keras3_nested.h5")
    nested3.save(folder / "keras3_nested.keras")
    flat2 = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35)
    _random_weights(flat2, 2)
    flat2.save(str(folder / "tf_keras_flat.h5"))
    flat2.save(str(folder / "tf_keras_flat.keras"))
    flat2.save_weights(str(folder / "tf_keras_no_top.h5"))
    inputs = keras.Input((32, 32, 3))
    nested2 = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(flat2(inputs)))
    nested2.save(str(folder / "tf_keras_nested.h5"))
    # a compiled and fitted model: its .keras file also holds metrics/ and optimizer/ state
    nested2.compile(optimizer="adam", loss="mse", metrics=["mae"])
    nested2.evaluate(np.zeros((2, 32, 32, 3), "float32"), np.zeros((2, 1280), "float32"), verbose=0)
    nested2.optimizer.build(nested2.trainable_variables)  # its state saved too, the weights unchanged
    nested2.save(str(folder / "tf_keras_compiled.keras"))
    return folder, {"keras3": base3, "tf_keras": flat2}


@pytest.mark.parametrize(
    "name, source, nested",
    [
        ("keras3_nested.h5", "keras3", True),
        ("keras3_nested.keras", "keras3", True),
        ("tf_keras_flat.h5", "tf_keras", False),
        ("tf_keras_flat.keras", "tf_keras", False),
        ("tf_keras_no_top.h5", "tf_keras", False),
        ("tf_keras_nested.h5", "tf_keras", True),
        ("tf_keras_compiled.keras", "tf_keras", True),
    ],
)
def test_any_keras_file_holding_the_backbone(foreign_files, name, source, nested):
    folder, sources = foreign_files
    built = build_classifier(cfg(weights=str(folder / name)), 4, 32)
    _assert_backbone_equal(built, sources[source])
    record = built.weights.to_json()
    assert record["source"] == "file" and record["pretrained"]
    with_weights = sum(1 for n in built.backbone_layers if built.model.get_layer(n).weights)
    assert record["file"]["matched_layers"] == record["file"]["backbone_layers_with_weights"] == with_weights == 104
    import hashlib

    assert record["file"]["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert bool(record["file"]["nested_in"]) is nested
    assert record["file"]["keras_version"].startswith("3." if source == "keras3" else "2.")
    moments = {layer.momentum for layer in built.model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert moments == {0.999}  # pretrained: Keras' momentum kept


@pytest.mark.parametrize("name", ["keras3_nested.h5", "keras3_nested.keras", "tf_keras_flat.h5"])
def test_a_file_of_another_width_is_refused_naming_the_layer(foreign_files, name):
    folder, _ = foreign_files
    with pytest.raises(WeightsError) as info:
        build_classifier(cfg(weights=str(folder / name), alpha=1.0), 4, 32)
    message = str(info.value)
    assert "\n" not in message and str(folder / name) in message
    assert "layer Conv1 kernel has shape (3, 3, 3, 16) in the file, (3, 3, 3, 32) in mobilenet_v2 alpha 1" in message


def test_a_file_with_part_of_the_backbone_is_refused_and_nothing_is_loaded(tmp_path, foreign_files):
    from edgeclf.training.weights_file import load_backbone

    _, sources = foreign_files
    flat = sources["tf_keras"]
    partial = keras.Model(flat.input, flat.get_layer("block_5_add").output)
    partial.save(str(tmp_path / "partial.h5"))
    target = build_classifier(cfg(), 4, 32)
    before = [w.copy() for w in target.model.get_weights()]
    with pytest.raises(WeightsError, match=r"only \d+ of 104 backbone layers .*first missing: block_6_expand"):
        load_backbone(target.model, target.backbone_layers, tmp_path / "partial.h5", "mobilenet_v2 alpha 0.35")
    for a, b in zip(before, target.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # all or nothing
    with pytest.raises(WeightsError, match="only 0 of"):
        build_classifier(cfg("mobilenet_v3_small", weights=str(tmp_path / "partial.h5")), 4, 32)


def test_a_keras_file_is_read_not_executed(tmp_path):
    """A Lambda layer in the file is never deserialised: its function would write a marker."""
    import keras as keras3

    marker = tmp_path / "executed"

    def side_effect(x):
        marker.write_text("ran")
        return x

    base = keras3.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35)
    inputs = keras3.Input((32, 32, 3))
    model = keras3.Model(inputs, keras3.layers.Lambda(side_effect)(base(inputs)))
    model.save(tmp_path / "lambda.keras")
    model.save(tmp_path / "lambda.h5")
    marker.unlink()
    for name in ("lambda.keras", "lambda.h5"):
        build_classifier(cfg(weights=str(tmp_path / name)), 3, 32)
    assert not marker.exists()


@pytest.mark.slow  # several seconds: the whole suite runs it (the fast one stays under 3 minutes)
def test_hostile_or_wrong_files_are_one_line_errors(tmp_path, foreign_files, monkeypatch):
    import zipfile

    from edgeclf.training import weights_file

    folder, _ = foreign_files
    cases = {
        "junk.h5": (b"not hdf5 at all", "not a Keras file"),
        "junk.keras": (b"PK\x03\x04" + b"\0" * 40, "not a readable .keras zip"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(WeightsError, match=message):
            build_classifier(cfg(weights=str(tmp_path / name)), 3, 32)
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as archive:
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(WeightsError, match="without config.json"):
        build_classifier(cfg(weights=str(tmp_path / "noconfig.keras")), 3, 32)
    with zipfile.ZipFile(tmp_path / "deep.keras", "w") as archive:
        archive.writestr("config.json", "[" * 100_000 + "]" * 100_000)
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(WeightsError, match="config.json is not readable JSON"):
        build_classifier(cfg(weights=str(tmp_path / "deep.keras")), 3, 32)
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(WeightsError, match="expected a Keras .h5 or .keras file"):
        build_classifier(cfg(weights=str(tmp_path / "weights.txt")), 3, 32)
    # the inflated size is counted while extracting, whatever the zip's header says
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", '{"class_name": "Functional", "config": {"layers": []}}')
        archive.writestr("model.weights.h5", b"\0" * 1_000_000)
    monkeypatch.setattr(weights_file, "MAX_FILE_BYTES", 200_000)
    assert (tmp_path / "bomb.keras").stat().st_size < 200_000
    with pytest.raises(WeightsError, match="model.weights.h5 inflates past 200,000 bytes"):
        build_classifier(cfg(weights=str(tmp_path / "bomb.keras")), 3, 32)
    with pytest.raises(WeightsError, match="over the 200,000-byte limit"):
        build_classifier(cfg(weights=str(folder / "tf_keras_flat.h5")), 3, 32)
