"""train.class_weights and the imbalance check: the weights computed, validated, recorded, and
applied to the loss (a weighted class gains recall on an imbalanced folder)."""

import json

import pytest

from edgeclf.core.config import load_config
from edgeclf.core.errors import ConfigError
from edgeclf.data.class_weights import class_weights, imbalance
from tests.helpers import class_folders


def test_balanced_weights_make_every_class_count_the_same():
    counts = {"bag": 100, "sneaker": 20, "trouser": 30}
    weights = class_weights("balanced", list(counts), counts)
    assert weights == pytest.approx({0: 150 / 300, 1: 150 / 60, 2: 150 / 90})
    assert sum(weights[i] * n for i, n in enumerate(counts.values())) == pytest.approx(sum(counts.values()))
    assert class_weights("none", list(counts), counts) is None
    assert class_weights({"sneaker": 3.0}, list(counts), counts) == {0: 1.0, 1: 3.0, 2: 1.0}
    with pytest.raises(ConfigError, match="class 'boot' is not in the data"):
        class_weights({"boot": 2.0}, list(counts), counts)


@pytest.mark.parametrize("bad", [{"bag": 0}, {"bag": -1}, {"bag": float("nan")}, {"bag": float("inf")}, "equal"])
def test_bad_class_weights_are_config_errors(bad):
    with pytest.raises(ConfigError, match="class_weights"):
        load_config(overrides={"train.class_weights": bad})


def test_imbalance_is_reported_beyond_three_to_one(tmp_path, caplog):
    from edgeclf.core.config import SplitConfig
    from edgeclf.data.dataset import discover

    assert imbalance({"a": 30, "b": 10})["imbalanced"] is False
    assert imbalance({"a": 31, "b": 10}) == {
        "largest": {"class": "a", "images": 31},
        "smallest": {"class": "b", "images": 10},
        "ratio": 3.1,
        "imbalanced": True,
    }
    class_folders(tmp_path / "data", ["bag"], 40)
    class_folders(tmp_path / "data", ["sneaker"], 10)
    split = SplitConfig(train=0.7, val=0.15, test=0.15)
    dataset = discover(tmp_path / "data", split, seed=1, duplicates="warn")
    record = dataset.to_json()["imbalance"]
    assert record["imbalanced"] and record["largest"]["class"] == "bag" and record["ratio"] == pytest.approx(4.0)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "class bag has 4.0x the training images of sneaker" in m and "class_weights: balanced" in m for m in warned
    )


@pytest.mark.slow
def test_weighting_a_class_raises_its_recall_and_is_recorded(tmp_path):
    """small_cnn on bag vs shirt vs pullover (the last two look alike) with pullover heavily
    weighted: the model predicts pullover more often than unweighted, on the same seed."""
    pytest.importorskip("tf_keras")
    from edgeclf.training.train import train

    data = class_folders(tmp_path / "data", ["bag", "pullover", "shirt"], 60)
    base = {
        "data.image_size": 32,
        "data.batch_size": 16,
        "model.name": "small_cnn",
        "model.alpha": 0.5,
        "model.weights": "none",
        "train.epochs": 6,
        "train.fine_tune_epochs": 0,
        "train.learning_rate": 0.003,
        "augment.enabled": False,
        "data.split": {"train": 0.5, "val": 0.5, "test": 0.0},
    }
    predicted = {}
    for name, setting in (("none", "none"), ("weighted", {"pullover": 20.0})):
        out = tmp_path / name
        train(data, out, load_config(overrides={**base, "train.class_weights": setting}))
        meta = json.loads((out / "metadata.json").read_text())
        from edgeclf.core.run_directory import Run
        from edgeclf.training.models import load_model

        run = Run.open(out)
        pixels, labels, _ = run.images("val")
        guesses = load_model(run.model_path).predict(pixels.astype("float32"), verbose=0).argmax(1)
        predicted[name] = int((guesses == 1).sum())
        if name == "weighted":
            assert meta["training"]["class_weights"] == {"bag": 1.0, "pullover": 20.0, "shirt": 1.0}
        else:
            assert meta["training"]["class_weights"] is None
    assert predicted["weighted"] > predicted["none"], predicted
