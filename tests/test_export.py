"""QAT and export through the real pipeline (slow: every test here converts) on a fresh run made
with the committed fixture's recipe; the fixture itself is checked to be what the pipeline makes."""

import hashlib
import importlib.util
import json
import shutil
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.config import load_config
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.run_directory import Run
from edgeclf.export.errors import NotIntegerError
from edgeclf.export.formats import select
from edgeclf.runtime import Classifier, read_artifacts
from edgeclf.runtime.backends import engine_available, native_bf16
from edgeclf.runtime.embedded import tflite_labels
from edgeclf.training.qat import QatUnsupported, run_qat
from tests.conftest import CLASSES

# what an export writes on OpenVINO on this machine (bf16 only where the CPU has it)
OPENVINO_HERE = (
    ["openvino-fp32", "openvino-int8-ptq"]
    + (["openvino-bf16"] if native_bf16() else [])
    + (["openvino-int8-nncf"] if importlib.util.find_spec("nncf") else [])
    if engine_available("openvino")
    else []
)

pytest.importorskip("tensorflow_model_optimization")
onnx = pytest.importorskip("onnx")

ALL = sorted(
    [
        "onnx-fp32",
        "onnx-int8-ptq",
        "tflite-dynamic",
        "tflite-fp16",
        "tflite-fp32",
        "tflite-int8-ptq",
        "tflite-int8-qat",
    ]
    + OPENVINO_HERE
)


@pytest.mark.slow
def test_every_format_and_precision_is_written_and_indexed(exported):
    run = exported
    entries = read_artifacts(run)
    assert sorted(a.name for a in entries) == ALL
    index = json.loads((run / "export" / "artifacts.json").read_text())
    assert index["classes"] == CLASSES and index["version"] == 1
    for a in entries:
        content = (run / a.path).read_bytes()
        assert a.bytes == len(content) and a.sha256 == hashlib.sha256(content).hexdigest(), a.name
        assert a.labels == CLASSES and a.preprocessing["size"] == [32, 32]
        # the default gates (1 point for int8, 1e-4 and 0.02 for fp32 and fp16): every artifact passes them
        assert a.status == "ok" and a.validation["images"] == 27 and "agreement_with_float" in a.validation
        assert a.produced_by and a.source_model in ("model.keras", "qat_model.h5")
    assert not list((run / "export").glob(".*"))  # no temporary files left


@pytest.mark.slow
def test_io_dtypes_and_quantization_parameters(exported):
    run = exported
    by_name = {a.name: a for a in read_artifacts(run)}
    assert by_name["tflite-fp32"].input.dtype == "float32" and by_name["tflite-fp32"].input.expects == "pixels"
    qat, ptq = by_name["tflite-int8-qat"], by_name["tflite-int8-ptq"]
    assert (qat.input.dtype, qat.output.dtype) == ("uint8", "uint8")
    # QAT starts after `normalize`: its uint8 input is x/127.5 - 1, quantized over the range QAT
    # learned (about [-1, 1]; exactly scale 1/127.5, zero point 128 on the demo, see test_end_to_end)
    assert qat.input.expects == "normalized"
    low, high = (0 - qat.input.zero_point) * qat.input.scale, (255 - qat.input.zero_point) * qat.input.scale
    assert -1.05 <= low <= -0.8 and 0.8 <= high <= 1.05, (low, high)
    # PTQ keeps `normalize` in the graph: raw pixels go in as they are
    assert (
        ptq.input.expects == "pixels" and ptq.input.scale == pytest.approx(1.0, rel=1e-2) and ptq.input.zero_point == 0
    )
    assert by_name["onnx-int8-ptq"].input.dtype == "float32"


@pytest.mark.slow
def test_float_artifacts_match_keras_and_int8_report_accuracy(exported):
    run = exported
    for a in read_artifacts(run):
        v = a.validation
        if a.precision in ("fp32", "fp16"):
            assert v["check"] == "max_abs_diff" and v["max_abs_diff"] <= v["tolerance"]
            if a.precision == "fp32":  # fp16 may flip a near-tie within its tolerance
                assert v["agreement_with_float"] == 1.0
        elif a.precision == "bf16":  # its own check: the 99th percentile of the difference, and agreement
            assert v["check"] == "p99_abs_diff" and v["p99_abs_diff"] <= min(v["tolerance"], v["max_abs_diff"])
            assert v["agreement_with_float"] >= 0.99
        else:
            assert v["check"] == "accuracy_drop" and 0 <= v["accuracy"] <= 1
            assert v["drop_points"] == pytest.approx((v["float_accuracy"] - v["accuracy"]) * 100, abs=1e-3)
    assert "agreement_with_source" in {a.name: a for a in read_artifacts(run)}["tflite-int8-qat"].validation


@pytest.mark.slow
def test_labels_and_metadata_inside_the_files(exported):
    run = exported
    for a in read_artifacts(run):
        content = (run / a.path).read_bytes()
        if a.format == "tflite":
            assert tflite_labels(content) == CLASSES
            from tensorflow.lite.tools import flatbuffer_utils

            model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
            assert [m.name for m in model.metadata if m.name == b"TFLITE_METADATA"]
        else:
            model = onnx.load_from_string(content)
            onnx.checker.check_model(model, full_check=True)
            props = {p.key: p.value for p in model.metadata_props}
            assert json.loads(props["edgeclf.labels"]) == CLASSES
            assert json.loads(props["edgeclf.preprocessing"])["size"] == [32, 32]


@pytest.mark.slow
def test_int8_onnx_holds_int8_weights_and_runs(exported):
    run = exported
    a = {a.name: a for a in read_artifacts(run)}["onnx-int8-ptq"]
    model = onnx.load(run / a.path)
    int8 = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 10
    assert "QuantizeLinear" in {n.op_type for n in model.graph.node}
    pixels = Run.open(run).images("val")[0]
    int8 = Classifier.from_run(run, a)
    raw = np.concatenate([int8.backend.run(int8.prepare(pixels[i : i + 1])) for i in range(len(pixels))])
    fp32 = {b.name: b for b in read_artifacts(run)}["onnx-fp32"]
    reference = Classifier.from_run(run, fp32).predict_pixels(pixels)
    assert np.abs(raw - reference).max() <= 0.1  # its own output, before any renormalisation


@pytest.mark.slow
def test_int8_onnx_weight_width_is_chosen_on_the_evidence(exported):
    """export.onnx_reduce_range auto: the 7-bit and the 8-bit file are both validated, the one that
    agrees with the float model on more gate images is kept (7-bit on a tie), and the file kept is
    that one: its weights span 8 bits only when 8-bit was chosen."""
    import onnx
    from onnx import numpy_helper

    a = {a.name: a for a in read_artifacts(exported)}["onnx-int8-ptq"]
    candidates = a.validation["candidates"]
    assert [c["reduce_range"] for c in candidates] == [True, False] and sum(c["chosen"] for c in candidates) == 1
    chosen = next(c for c in candidates if c["chosen"])
    best = max(c["gate_agreement_with_float"] for c in candidates)
    assert chosen["gate_agreement_with_float"] == best
    if candidates[0]["gate_agreement_with_float"] == candidates[1]["gate_agreement_with_float"]:
        assert chosen["reduce_range"]
    model = onnx.load(exported / a.path)
    widest = max(
        int(np.abs(numpy_helper.to_array(t).astype(np.int32)).max())
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and t.dims
    )
    assert (widest <= 64) == chosen["reduce_range"]  # 7-bit weights: per-channel within +-63 (+-64 rounding)
    assert ("7-bit" in a.produced_by) == chosen["reduce_range"]


@pytest.mark.slow
def test_a_float_model_passed_off_as_int8_is_refused():
    import tf_keras as keras

    from edgeclf.export import tflite

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(NotIntegerError, match="float tensor|expected uint8"):
        tflite.check_precision(tflite.convert(model, "dynamic"), "int8-ptq", "uint8")


@pytest.mark.slow
def test_the_committed_fixture_is_what_the_pipeline_makes(exported):
    """tests/fixtures/tiny_run (what the fast tests use) against a run made now with its recipe:
    the same artifacts, I/O and quantization layout, and validation within one image. When this
    fails after a change of format, regenerate it: python -m tests.fixtures.make_tiny_run."""
    from tests.fixtures.make_tiny_run import HERE

    fresh = {a.name: a for a in read_artifacts(exported)}
    committed = {a.name: a for a in read_artifacts(HERE / "tiny_run")}
    # the fixture was made where OpenVINO has bf16; a machine without it writes no openvino-bf16
    assert sorted(fresh) == sorted(n for n in committed if n in fresh or n != "openvino-bf16") == ALL
    index = json.loads((HERE / "tiny_run" / "export" / "artifacts.json").read_text())
    assert index["version"] == json.loads((exported / "export" / "artifacts.json").read_text())["version"]
    for name, a in fresh.items():
        b = committed[name]
        assert (a.format, a.precision, a.path, a.status) == (b.format, b.precision, b.path, b.status), name
        assert (a.input.dtype, a.input.expects, a.output.dtype) == (b.input.dtype, b.input.expects, b.output.dtype)
        assert set(a.validation) == set(b.validation), name
        assert abs(a.validation["accuracy"] - b.validation["accuracy"]) <= 1 / a.validation["images"] + 1e-9, name
    assert (
        json.loads((HERE / "tiny_run" / "metadata.json").read_text())["model"]
        == json.loads((exported / "metadata.json").read_text())["model"]
    )


def test_selection_follows_the_run_and_options():
    cfg = load_config().export
    assert [s.name for s in select(cfg, int8=False, has_qat=True)] == [
        "tflite-fp32",
        "tflite-fp16",
        "onnx-fp32",
        "openvino-fp32",
        "openvino-bf16",
    ]
    assert [s.name for s in select(cfg, int8=True, has_qat=True)] == [
        "tflite-fp32",
        "tflite-fp16",
        "tflite-int8-qat",
        "onnx-fp32",
        "onnx-int8-ptq",
        "openvino-fp32",
        "openvino-bf16",
        "openvino-int8-ptq",
        "openvino-int8-nncf",
    ]
    assert "tflite-int8-ptq" in [s.name for s in select(cfg, int8=True, has_qat=False)]
    only_onnx = cfg.model_copy(update={"formats": ["onnx"]})
    assert [s.name for s in select(only_onnx, int8=True, has_qat=False)] == ["onnx-fp32", "onnx-int8-ptq"]
    # OpenVINO runs the ONNX files: without onnx in formats it has nothing to run; bf16 is a switch
    assert select(cfg.model_copy(update={"formats": ["tflite", "openvino"]}), int8=True, has_qat=False)[-1].name == (
        "tflite-int8-ptq"
    )
    no_bf16 = cfg.model_copy(update={"bf16": False, "formats": ["onnx", "openvino"]})
    assert [s.name for s in select(no_bf16, int8=False, has_qat=False)] == ["onnx-fp32", "openvino-fp32"]


def test_a_mobilenet_v3_of_tensorflow_op_layers_is_refused_with_a_pointer(tmp_path):
    """A MobileNetV3 built by Keras' own hard-swish (TFOpLambda layers: a run trained before edgeclf
    built it of quantizable layers) is refused by QAT in one line that says what to do."""
    import tf_keras as keras

    from edgeclf.training.qat import quantize_aware

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="normalize")(inputs)
    x = keras.applications.MobileNetV3Small(
        input_tensor=x, include_top=False, weights=None, include_preprocessing=False
    ).output
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(QatUnsupported, match=r"TFOpLambda.*train it again.*edgeclf export RUN --int8"):
        quantize_aware(keras.Model(inputs, outputs))


def test_export_of_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["export", str(tmp_path), "--int8"])
    assert result.exit_code == 2 and "has no metadata.json" in result.output
    with pytest.raises(EdgeclfError):
        run_qat(tmp_path / "missing")


@pytest.mark.slow
def test_an_export_killed_midway_restarts_cleanly(tiny_run, tmp_path):
    """kill -9 while an artifact is being converted, then the same command again: the dead
    process's temporary file is removed (with a warning), every artifact is written and indexed,
    and what is on disk matches artifacts.json."""
    import signal
    import subprocess
    import sys

    from edgeclf.runtime.integrity import check_recorded

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    command = [sys.executable, "-m", "edgeclf", "export", str(run), "--int8"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "tflite-int8" in line and "converting" in line:
            time.sleep(0.5)  # inside the conversion: its temporary file is being written
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not [p.name for p in (run / "export").iterdir() if p.name.startswith(".")]
    index = run / "export" / "artifacts.json"
    for entry in read_artifacts(run):
        check_recorded(run / entry.path, entry.bytes, entry.sha256, index)
