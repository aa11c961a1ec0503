"""Packed datasets (edgeclf data pack): the same pixels as the folder, the split kept, a damaged or
partial pack refused in one line, and training and the later stages reading a pack without the folder."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.config import PackConfig, load_config
from edgeclf.core.errors import DataError
from edgeclf.core.images import load_image
from edgeclf.data.packed import MANIFEST, _parse, open_pack, pack, records, shard_counts
from edgeclf.data.prepare import prepare_folder
from edgeclf.data.reader import split_batches
from tests.helpers import class_folders
from tests.recipes import TINY_CNN

tf = pytest.importorskip("tensorflow")

SIZE = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("packed") / "data", ["bag", "sneaker", "trouser"], 40)


@pytest.fixture(scope="module")
def dataset(folder):
    return prepare_folder(folder, load_config(overrides={"data.image_size": SIZE}))


@pytest.fixture(scope="module")
def packed(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("packs") / "png"
    pack(dataset, out, SIZE, PackConfig(shards=3, encoding="png"), seed=5)
    return out


def _folder_pixels(dataset, split):
    return np.stack([load_image(dataset.root / r.path, SIZE) for r in dataset.split(split)])


def test_the_manifest_keeps_the_split_and_describes_the_shards(dataset, packed):
    manifest = json.loads((packed / MANIFEST).read_text())
    assert manifest["image_size"] == SIZE and manifest["encoding"] == "png" and manifest["seed"] == 5
    assert manifest["dataset"]["files"] == dataset.to_json()["files"]  # the split, label and sha256 of every file
    assert {s: len(v) for s, v in manifest["shards"].items()} == {"train": 3, "val": 1, "test": 1}
    for split, shards in manifest["shards"].items():
        assert sum(s["images"] for s in shards) == len(dataset.split(split))
        assert all((packed / s["file"]).stat().st_size == s["bytes"] for s in shards)
    assert not [p for p in packed.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_packed_pixels_are_the_folders_pixels(dataset, tmp_path, encoding):
    out = tmp_path / encoding
    pack(dataset, out, SIZE, PackConfig(shards=2, encoding=encoding), seed=1)
    view = open_pack(out).dataset
    for split in ("val", "test"):  # in the manifest's order
        got = np.concatenate(list(split_batches(view, split, SIZE, 7)))
        np.testing.assert_array_equal(got, _folder_pixels(dataset, split))
    positions = [30, 2, 17, 2]  # the calibration path: chosen positions in the training split, in that order
    got = np.concatenate(list(split_batches(view, "train", SIZE, 3, positions)))
    np.testing.assert_array_equal(got, _folder_pixels(dataset, "train")[positions])


def test_training_shards_mix_the_classes_and_hold_every_image_once(dataset, packed):
    pack_ = open_pack(packed)
    labels_by_position = np.array([r.label for r in dataset.split("train")])
    shard = tf.data.TFRecordDataset(pack_.files("train")[0]).map(_parse)
    first_shard = [int(p) for _, _, p in shard.as_numpy_iterator()]
    assert first_shard != sorted(first_shard)  # a seeded random order, not the class-ordered list
    assert len(set(labels_by_position[first_shard])) == 3
    ds = records(pack_, "train", training=True, seed=1)
    epochs = [[int(p) for _, _, p in ds.as_numpy_iterator()] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(len(labels_by_position)))
    assert epochs[0] != epochs[1]  # the shard order is reshuffled every epoch


def test_shard_counts_follow_the_split_sizes(dataset):
    assert shard_counts(dataset, 0) == {"train": 1, "val": 1, "test": 1}  # 84 training images: one shard
    assert shard_counts(dataset, 500) == {"train": 84, "val": 18, "test": 18}  # at most one image per shard


def test_a_damaged_or_partial_pack_is_one_line(dataset, packed, tmp_path):
    with pytest.raises(DataError, match="no pack.json; not a packed dataset"):
        open_pack(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(packed, copy)
    (copy / "train-00001-of-00003.tfrecord").write_bytes(b"short")
    with pytest.raises(DataError, match="train-00001-of-00003.tfrecord: missing or not the size"):
        open_pack(copy)
    (copy / MANIFEST).write_text('{"format": "edgeclf-pack", "version": 1, "image_size": 9}')
    with pytest.raises(DataError, match=r"pack.json: not a valid pack manifest \(no 'encoding'\)"):
        open_pack(copy)
    (copy / MANIFEST).write_text(
        '{"format": "edgeclf-pack", "version": 1, "image_size": 9, "encoding": "png", "shards": {}}'
    )
    with pytest.raises(DataError, match=r"pack.json: not a valid pack manifest \(image_size 9 \(32..4096"):
        open_pack(copy)
    (copy / MANIFEST).write_text("[1, 2")
    with pytest.raises(DataError, match="pack.json: not valid JSON"):
        open_pack(copy)
    view = open_pack(packed).dataset
    with pytest.raises(DataError, match="packed at 32 px, the run reads 48"):
        next(split_batches(view, "val", 48, 4))


def test_an_interrupted_pack_leaves_nothing(dataset, tmp_path):
    def stop(done, total):
        if done > 40:
            raise KeyboardInterrupt

    where = tmp_path / "packs"
    where.mkdir()
    with pytest.raises(KeyboardInterrupt):
        pack(dataset, where / "pack", SIZE, PackConfig(shards=3, encoding="png"), seed=1, progress=stop)
    assert list(where.iterdir()) == []


def test_packed_batches_for_training(packed):
    from edgeclf.data.pipeline import make_packed_dataset

    pack_ = open_pack(packed)
    data = load_config(overrides={"data.image_size": SIZE, "data.batch_size": 16}).data
    batches = list(make_packed_dataset(pack_, "train", 3, data, training=True, seed=1).as_numpy_iterator())
    images, labels = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert images.shape == (84, SIZE, SIZE, 3) and images.dtype == np.float32 and labels.sum(0).tolist() == [28] * 3
    with pytest.raises(DataError, match="pass --image-size 32 or pack again with --image-size 64"):
        make_packed_dataset(pack_, "train", 3, data.model_copy(update={"image_size": 64}), training=True, seed=1)


def test_the_cli_packs_and_refuses_bad_options(folder, tmp_path):
    runner = CliRunner()
    out = tmp_path / "pack"
    result = runner.invoke(app, ["data", "pack", str(folder), "--out", str(out), "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "120 images at 32 px" in result.output and (out / MANIFEST).is_file()
    again = runner.invoke(app, ["data", "pack", str(folder), "--out", str(out), "--image-size", "32"])
    assert again.exit_code == 2 and "already holds" in again.output
    bad = runner.invoke(app, ["data", "pack", str(folder), "--out", str(tmp_path / "x"), "--encoding", "jpeg"])
    assert (
        bad.exit_code == 2
        and "--encoding 'jpeg': Input should be 'png' or 'raw'" in bad.output
        and "Traceback" not in bad.output
    )
    inside = runner.invoke(app, ["data", "pack", str(folder), "--out", str(folder / "pack")])
    assert inside.exit_code == 2 and "inside the data folder" in inside.output


@pytest.mark.slow
def test_a_run_trained_on_a_pack_needs_no_folder(folder, tmp_path):
    """train, export (validation and calibration), evaluate and bench read the images from the pack."""
    from edgeclf.core.config import BenchConfig
    from edgeclf.core.run_directory import Run
    from edgeclf.export.stage import export_run
    from edgeclf.measure.evaluate import evaluate_run
    from edgeclf.training.train import prepare, train

    data = tmp_path / "data"
    shutil.copytree(folder, data)
    cfg = load_config(overrides={**TINY_CNN, "data.image_size": SIZE, "train.epochs": 3})
    pack(prepare_folder(data, cfg), tmp_path / "pack", SIZE, PackConfig(shards=2, encoding="png"), seed=1)
    shutil.rmtree(data)  # from here on only the pack exists
    run = tmp_path / "run"
    result = train(prepare(tmp_path / "pack", run, cfg), run, cfg)
    assert result.val_accuracy > 0.6
    manifest = json.loads((run / "dataset.json").read_text())
    assert manifest["pack"] == str(tmp_path / "pack")
    exported = export_run(run, int8=True, overrides={"export.formats": ["tflite"], "export.calibration_images": 30})
    assert all(a.status == "ok" for a in exported.artifacts)
    report = evaluate_run(run, "test")
    assert report.images == len(Run.open(run).dataset.split("test")) == 18 and len(report.scores) == 4
    from edgeclf.measure.bench import run_bench

    bench = run_bench(run, BenchConfig(**{**load_config().bench.model_dump(), "runs": 3, "warmup": 1}))
    assert bench.document["inputs"]["images"] == 18 and bench.document["decode_ms"] is None
    from edgeclf.measure.report import build_report

    build_report(run)  # the galleries read their thumbnails from the pack too
    page = (run / "reports" / "report.html").read_text()
    assert "Right answers, per class" in page and page.count("<figure>") >= 3
    assert len(list((run / "reports" / "figures").glob("gallery_correct_*.png"))) == 6  # 2 per class


def test_data_pack_moves_its_checking_bar(tmp_path, monkeypatch):
    """Before: `edgeclf data pack`'s "checking images" bar never moved: its callback was not passed
    to the folder check (issue 22)."""
    import contextlib

    from typer.testing import CliRunner

    import edgeclf.data.packed
    from edgeclf.cli import app, render
    from tests.helpers import class_folders

    calls: dict[str, list] = {}

    @contextlib.contextmanager
    def counting(what):
        calls[what] = []
        yield lambda done, total: calls[what].append((done, total))

    def no_pack(*args, **kwargs):
        raise edgeclf.data.packed.DataError("stopped here by the test")

    monkeypatch.setattr(render, "counting", counting)
    monkeypatch.setattr(edgeclf.data.packed, "pack", no_pack)
    data = class_folders(tmp_path / "d", ["bag", "sneaker"], 4)
    result = CliRunner().invoke(app, ["data", "pack", str(data), "--out", str(tmp_path / "p")])
    assert "stopped here by the test" in result.output
    assert calls["checking images"] and calls["checking images"][-1] == (8, 8)
