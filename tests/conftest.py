import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # unit tests run on the CPU

import pytest

from tests.helpers import class_folders, make_messy_folder


@pytest.fixture
def three_classes(tmp_path):
    """3 classes x 10 Fashion-MNIST images."""
    return class_folders(tmp_path / "data", ["bag", "sneaker", "trouser"], 10)


@pytest.fixture
def messy(tmp_path):
    return make_messy_folder(tmp_path / "messy", per_class=10)


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    """HOME (and so Keras' cache, ~/.keras) points into the test's folder: no test sees or fills
    the user's cache."""
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
