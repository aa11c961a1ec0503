"""Validation as its own step (edgeclf validate / revalidate_run) on the committed fixture run: the
int8 gate on a real checkpoint whose drop is known, and each typed verdict on a real bad file."""

import hashlib
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.run_directory import Run
from edgeclf.export.errors import AccuracyDropTooLarge, NotIntegerError, ToleranceExceeded
from edgeclf.export.stage import revalidate_run
from edgeclf.runtime import Classifier, read_artifacts

pytest.importorskip("tf_keras")
runner = CliRunner()
INT8 = ["onnx-int8-ptq", "tflite-int8-ptq", "tflite-int8-qat"]


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    return shutil.copytree(tiny_run, tmp_path / "run")


def _entries(run):
    return {a.name: a for a in read_artifacts(run)}


@pytest.mark.slow  # several seconds: the whole suite runs it (the fast one stays under 3 minutes)
def test_the_int8_gate_on_a_checkpoint_whose_drop_is_known(run_copy):
    """The int8 files' drop against the float model on the validation images, computed here without
    the exporter (on this CPU: int8 kernels round differently across CPUs, so the fixture's record
    from another machine is only expected within one image), is what validate records, and its
    verdict at the strictest gate, 0 points, follows from it."""
    from edgeclf.training.models import load_model

    run = Run.open(run_copy)
    pixels, labels, _ = run.images("val")
    one_image = 100 / len(labels)
    float_accuracy = float(
        (load_model(run.model_path).predict(pixels.astype(np.float32), verbose=0).argmax(1) == labels).mean()
    )
    recorded = _entries(run_copy)
    known = {}
    for name in INT8:
        accuracy = float(
            (Classifier.from_run(run_copy, recorded[name]).predict_pixels(pixels).argmax(1) == labels).mean()
        )
        known[name] = round((float_accuracy - accuracy) * 100, 4)
        assert abs(known[name] - recorded[name].validation["drop_points"]) <= one_image + 1e-9, name
    result = runner.invoke(app, ["validate", str(run_copy), "--max-drop", "0"])
    assert result.exit_code == (0 if all(d <= 0 for d in known.values()) else 2), result.output
    assert result.output.count("tflite-int8-qat: validating") == 1  # once, though TensorFlow added a root handler
    for name in INT8:
        v = _entries(run_copy)[name].validation
        assert v["drop_points"] == pytest.approx(known[name], abs=1e-3) and v["max_drop"] == 0, name
        assert v["passed"] == (known[name] <= 0) and v["check"] == "accuracy_drop", name


def test_an_accuracy_drop_over_the_gate_fails_keeps_the_file_and_marks_it(run_copy, monkeypatch):
    real = Classifier.predict_pixels

    def wrong_int8(self, pixels, batch_size=32):
        probs = real(self, pixels, batch_size)
        if self.info.precision.startswith("int8"):
            return np.eye(3, dtype=np.float32)[(probs.argmax(1) + 1) % 3]  # every answer moved to another class
        return probs

    monkeypatch.setattr(Classifier, "predict_pixels", wrong_int8)
    with pytest.raises(AccuracyDropTooLarge, match=r"tflite-int8-ptq failed validation: validation accuracy \d"):
        revalidate_run(run_copy, ["tflite-int8-ptq"])
    result = runner.invoke(app, ["validate", str(run_copy), "--artifact", "tflite-int8-qat", "--max-drop", "5"])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert (
        message.startswith("error: tflite-int8-qat failed validation: validation accuracy ")
        and "--max-drop 5" in message
    )
    entry = _entries(run_copy)["tflite-int8-qat"]
    assert (
        entry.status == "failed"
        and entry.validation["failure"] == "accuracy_drop"
        and entry.validation["drop_points"] > 90
    )
    assert (run_copy / entry.path).is_file()
    assert _entries(run_copy)["tflite-fp32"].status == "ok"  # the others keep their verdicts


def test_float_tensors_in_an_int8_file_are_a_not_integer_verdict(run_copy):
    export = run_copy / "export"
    exported_sha = _entries(run_copy)["tflite-int8-ptq"].sha256
    shutil.copy(export / "model_dynamic.tflite", export / "model_int8_ptq.tflite")  # float I/O, int8 weights
    with pytest.raises(
        NotIntegerError, match=r"tflite-int8-ptq failed validation: TFLite int8-ptq: input/output are float32"
    ) as info:
        revalidate_run(run_copy, ["tflite-int8-ptq"])
    assert info.value.result.changed == ["tflite-int8-ptq"]
    entry = _entries(run_copy)["tflite-int8-ptq"]
    assert entry.status == "failed" and entry.validation["failure"] == "not_integer"
    assert entry.input.dtype == "float32"  # the entry now describes the file as it is
    now = hashlib.sha256((export / "model_int8_ptq.tflite").read_bytes()).hexdigest()
    assert entry.sha256 == now != exported_sha


def test_probabilities_beyond_the_tolerance_are_a_tolerance_verdict(run_copy):
    export = run_copy / "export"
    shutil.copy(export / "model_fp16.tflite", export / "model_fp32.tflite")  # fp16 weights: ~6e-4 from Keras
    result = runner.invoke(app, ["validate", str(run_copy), "--artifact", "tflite-fp32"])
    assert result.exit_code == 2 and "tflite-fp32 failed validation: max |p - p_keras| = " in result.output
    assert "> tolerance 0.0001" in result.output
    entry = _entries(run_copy)["tflite-fp32"]
    assert entry.validation["failure"] == "tolerance" and entry.validation["max_abs_diff"] > 1e-4
    with pytest.raises(ToleranceExceeded):
        revalidate_run(run_copy, ["tflite-fp32"])


def test_an_unchanged_export_revalidates_to_the_same_verdicts(run_copy):
    before = _entries(run_copy)
    result = revalidate_run(run_copy)
    assert result.changed == [] and not result.failed and len(result.artifacts) == len(before)
    for name, entry in _entries(run_copy).items():
        assert entry.sha256 == before[name].sha256 and entry.status == "ok"
        # the fixture's accuracies were measured on another CPU: int8 (and bf16) kernels round in
        # ISA-specific ways, so a near-tie may flip; within one image of the record
        one_image = 1 / entry.validation["images"]
        assert abs(entry.validation["accuracy"] - before[name].validation["accuracy"]) <= one_image + 1e-9, name


def test_validate_without_an_export_says_what_to_do(run_copy):
    shutil.rmtree(run_copy / "export")
    result = runner.invoke(app, ["validate", str(run_copy)])
    assert result.exit_code == 2 and "run edgeclf export" in result.output


def test_the_python_api_prints_nothing_and_returns_typed_results(run_copy, capsys):
    """Stages compute and return; only the command line renders (conftest detaches the CLI's console
    handler before every test, as a library user would not have it)."""
    from edgeclf.export.validate import Verdict
    from edgeclf.measure.evaluate import ArtifactScore, evaluate_run

    validated = revalidate_run(run_copy, ["tflite-int8-qat"])
    evaluated = evaluate_run(run_copy, "test", ["tflite-int8-qat"])
    assert capsys.readouterr() == ("", "")
    assert [a.name for a in validated.artifacts] == ["tflite-int8-qat"] and validated.images == 27
    assert set(validated.artifacts[0].validation) <= set(Verdict.__dataclass_fields__) | {"split"}
    assert [type(s) for s in evaluated.scores] == [ArtifactScore, ArtifactScore]
    assert evaluated.scores[0].name == "keras-fp32" and evaluated.path.is_file()


def _edit_onnx(path, edit):
    import onnx

    model = onnx.load(str(path))
    edit(model.graph)
    onnx.save(model, str(path))


def _wrong_input_scale(graph):
    """The first activation DequantizeLinear gets a scale of its own, a tenth of its QuantizeLinear's:
    the network sees its input at the wrong scale."""
    import onnx
    from onnx import numpy_helper

    init = {t.name: t for t in graph.initializer}
    first = next(n for n in graph.node if n.op_type == "QuantizeLinear")
    dq = next(n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] == first.output[0])
    scale = numpy_helper.to_array(init[dq.input[1]]) * 0.1
    graph.initializer.append(numpy_helper.from_array(scale.astype("float32"), "edgeclf_test_wrong_scale"))
    dq.input[1] = "edgeclf_test_wrong_scale"
    assert onnx.TensorProto.FLOAT == graph.initializer[-1].data_type


def _collapsed(graph):
    """The head's weights dequantized with a zero scale: every image gets the bias's answer."""
    from onnx import numpy_helper

    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    dq = next(n for n in graph.node if n.output[0] == gemm.input[1])
    init = {t.name: t for t in graph.initializer}
    zero = numpy_helper.to_array(init[dq.input[1]]) * 0
    init[dq.input[1]].CopyFrom(numpy_helper.from_array(zero.astype("float32"), dq.input[1]))


@pytest.mark.parametrize("edit", [_wrong_input_scale, _collapsed], ids=["wrong-input-scale", "collapsed"])
def test_a_broken_int8_file_still_fails_with_its_evidence(run_copy, edit):
    """The gate gives small data the benefit of the doubt, never a broken file: the fixture's int8
    ONNX with a wrong input scale, or collapsed to one answer, fails `edgeclf validate` (exit 2)
    on the validation split topped up with training images, and the record says on what."""
    _edit_onnx(run_copy / "export" / "model_int8_ptq.onnx", edit)
    result = runner.invoke(app, ["validate", str(run_copy), "--artifact", "onnx-int8-ptq"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: onnx-int8-ptq failed validation")
    v = _entries(run_copy)["onnx-int8-ptq"].validation
    gate = v["gate"]
    assert v["decision"] == "fail" and gate["decision"] == "fail" and gate["interval"][0] > v["max_drop"]
    assert (
        gate["sources"]["val"] == 27
        and gate["images"] == 27 + gate["sources"]["train"] + gate["sources"]["calibration"] > 27
    )
    assert gate["points_per_image"] == pytest.approx(100 / gate["images"])
    assert f"fail, {gate['images']} img" in result.output  # the table shows images and interval


def test_the_fixtures_int8_files_pass_with_a_resolution_stated(run_copy):
    """On the fixture's real int8 files the gate passes or is inconclusive, never fails, and every
    record states the images, one image's worth and the interval."""
    result = runner.invoke(app, ["validate", str(run_copy)])
    assert result.exit_code == 0, result.output
    for name in INT8:
        v = _entries(run_copy)[name].validation
        assert v["decision"] in ("pass", "inconclusive") and v["passed"]
        assert v["gate"]["images"] > 27 and len(v["gate"]["interval"]) == 2 and v["gate"]["points_per_image"] < 1
        if v["decision"] == "inconclusive":
            assert f"{name}: cannot resolve --max-drop 1" in " ".join(result.output.split())
