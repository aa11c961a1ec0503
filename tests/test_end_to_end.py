"""End-to-end runs through the CLI: the issue's acceptance command on a messy folder, and the demo."""

import importlib.util
import json
import subprocess
import sys
from collections import Counter

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.config import SplitConfig
from edgeclf.data.dataset import split_sizes
from edgeclf.demo import embedded_dataset
from edgeclf.runtime import read_artifacts
from edgeclf.runtime.backends import engine_available, native_bf16
from edgeclf.runtime.open import open_classifier
from tests.helpers import JUNK

RUN_FILES = {"config.yaml", "dataset.json", "labels.txt", "model.keras", "history.csv", "curves.png", "metadata.json"}


def test_embedded_dataset_is_small_balanced_and_licensed():
    root = embedded_dataset()
    counts = {d.name: len(list(d.glob("*.png"))) for d in root.iterdir() if d.is_dir()}
    assert len(counts) == 10 and len(set(counts.values())) == 1
    assert sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) <= 5_000_000
    assert "MIT" in (root / "LICENSE").read_text() and "fashion-mnist" in (root / "PROVENANCE.md").read_text()


@pytest.mark.slow
def test_acceptance_command_on_a_messy_folder(messy, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(messy),
            "--out",
            str(out),
            "--weights",
            "none",
            "--alpha",
            "0.35",
            "--image-size",
            "64",
            "--epochs",
            "3",
            "--fine-tune-epochs",
            "2",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    for path, reason in JUNK.items():
        assert f"{path}: {reason}" in result.output
    assert "skipped 4 file(s)" in result.output
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    manifest = json.loads((out / "dataset.json").read_text())
    assert {s["path"] for s in manifest["skipped"]} == set(JUNK)
    split = SplitConfig(train=0.7, val=0.15, test=0.15)
    for name in manifest["classes"]:
        counts = Counter(f["split"] for f in manifest["files"] if f["label_name"] == name)
        n = sum(counts.values())
        assert (counts["train"], counts["val"], counts["test"]) == split_sizes(n, split)
        for s, fraction in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            assert abs(counts[s] - n * fraction) < 1
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["epochs_run"] == 5


@pytest.mark.slow
def test_demo_from_the_command_line(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "edgeclf", "demo", "--out", str(out)], capture_output=True, text=True, timeout=1500
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(out / "model.keras") in proc.stdout
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["val_accuracy"] >= 0.7  # 10 classes: chance is 0.1
    # qat + export --int8: every artifact validated; int8 agrees with the float model's top-1
    artifacts = {a.name: a for a in read_artifacts(out)}
    openvino = {"openvino-fp32", "openvino-int8-ptq"} | ({"openvino-bf16"} if native_bf16() else set())
    openvino |= {"openvino-int8-nncf"} if importlib.util.find_spec("nncf") else set()
    assert set(artifacts) == {"tflite-fp32", "tflite-fp16", "tflite-int8-qat", "onnx-fp32", "onnx-int8-ptq"} | (
        openvino if engine_available("openvino") else set()
    )
    assert all(a.status == "ok" for a in artifacts.values())
    for name in ("tflite-int8-qat", "onnx-int8-ptq"):
        assert artifacts[name].validation["agreement_with_float"] >= 0.95, name
    assert artifacts["tflite-int8-qat"].bytes <= 0.42 * artifacts["tflite-fp32"].bytes
    qat_input = artifacts["tflite-int8-qat"].input  # the uint8 input absorbs x/127.5 - 1
    assert qat_input.scale == pytest.approx(1 / 127.5, rel=1e-3) and qat_input.zero_point == 128
    assert artifacts["onnx-int8-ptq"].bytes <= 1.15 * artifacts["tflite-int8-qat"].bytes
    assert "demo finished" in proc.stdout and "validation split" in proc.stdout
    # evaluate, bench, report: the whole chain, ending with the report's path
    for name in ("eval.json", "bench.json", "report.md", "report.html"):
        assert (out / "reports" / name).is_file(), name
    assert str(out / "reports" / "report.html") in proc.stdout
    evaluation = json.loads((out / "reports" / "eval.json").read_text())
    assert set(evaluation["artifacts"]) == {"keras-fp32", *artifacts}
    # the same precision in both formats gives the same top-1 on the test images
    images = [str(embedded_dataset() / f["path"]) for f in manifest_files(out) if f["split"] == "test"]
    tflite = open_classifier(out, "tflite-fp32").predict_files(images).argmax(1)
    onnx = open_classifier(out, "onnx-fp32").predict_files(images).argmax(1)
    assert (tflite == onnx).all()


def manifest_files(run):
    return json.loads((run / "dataset.json").read_text())["files"]
