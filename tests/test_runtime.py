"""The device side: predict and edgeclf.runtime without TensorFlow, and their output contract."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.images import load_image
from edgeclf.run_directory import Run
from edgeclf.runtime import read_artifacts
from edgeclf.runtime.open import default_artifact, describe_file, open_classifier
from tests.conftest import CLASSES

# importing tensorflow (or tf_keras) raises ImportError in the child, as on a device without it
NO_TF = "import sys; sys.modules['tensorflow'] = None; sys.modules['tf_keras'] = None; "


def _test_images(run):
    dataset = Run.open(run).dataset
    return [str(dataset.root / r.path) for r in dataset.split("test")]


@pytest.mark.parametrize("name", ["tflite-int8-qat", "tflite-int8-ptq", "onnx-int8-ptq", "tflite-fp32", "onnx-fp32"])
def test_runtime_without_tensorflow_gives_the_same_top1(tiny_run, name):
    run = tiny_run
    images = _test_images(run)
    here = open_classifier(run, name).predict_files(images).argmax(1).tolist()
    code = NO_TF + (
        "import json; from edgeclf.runtime.open import open_classifier; "
        f"c = open_classifier({str(run)!r}, {name!r}); "
        f"print(json.dumps(c.predict_files({images!r}).argmax(1).tolist())); "
        "assert 'tensorflow' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


@pytest.mark.parametrize("name", ["tflite-int8-qat", "onnx-int8-ptq"])
def test_predict_cli_without_tensorflow(tiny_run, name):
    run = tiny_run
    images = _test_images(run)[:3]
    artifact = {a.name: a for a in read_artifacts(run)}[name]
    code = (
        NO_TF
        + f"sys.argv = ['edgeclf', 'predict', {str(run / artifact.path)!r}, *{images!r}, '--json', '--top-k', '3']; "
        "from edgeclf.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    expected = open_classifier(run, name).predict_files(images).argmax(1)
    assert [r["top_k"][0]["label"] for r in results] == [CLASSES[i] for i in expected]


def test_predict_output_contract(tiny_run):
    run = tiny_run
    images = _test_images(run)
    for k in (1, 2, 3, 10):
        result = CliRunner().invoke(app, ["predict", str(run), *images, "--top-k", str(k), "--json"])
        assert result.exit_code == 0, result.output
        records = json.loads(result.output)
        assert [r["image"] for r in records] == images
        for r in records:
            probs = [p["probability"] for p in r["top_k"]]
            assert len(probs) == min(k, 3) and all(0 <= p <= 1 for p in probs)
            assert probs == sorted(probs, reverse=True)
            assert {p["label"] for p in r["top_k"]} <= set(CLASSES)
            assert set(r) == {"image", "top_k", "decode_ms", "preprocess_ms", "invoke_ms", "postprocess_ms"}


def _raw_probabilities(classifier, pixels):
    """The artifact's own output as probabilities: dequantized with the scale and zero point its
    description gives, NOT renormalised (renormalising would hide a wrong scale or zero point)."""
    raw = classifier.backend.run(classifier.prepare(pixels))
    spec = classifier.info.output
    return spec.dequantize(raw) if spec.quantized else raw.astype(np.float32)


@pytest.mark.parametrize("name", ["tflite-int8-qat", "tflite-int8-ptq", "onnx-int8-ptq", "tflite-dynamic"])
def test_quantized_outputs_dequantize_to_the_float_models_probabilities(tiny_run, name):
    """Every output of a quantized artifact, dequantized as artifacts.json describes it, is within
    0.1 of the float artifact's probability and the outputs sum to 1 within 0.05 (a uint8 softmax
    has steps of 1/256): a wrong scale or zero point fails this (checked below with one)."""
    from dataclasses import replace

    pixels = np.stack([load_image(p, (32, 32)) for p in _test_images(tiny_run)])
    reference = open_classifier(tiny_run, "tflite-fp32").predict_pixels(pixels)
    classifier = open_classifier(tiny_run, name)
    probs = _raw_probabilities(classifier, pixels)
    assert np.abs(probs - reference).max() <= 0.1, name
    assert np.abs(probs.sum(1) - 1).max() <= 0.05, name
    if classifier.info.output.quantized:
        shifted = replace(classifier.info.output, zero_point=classifier.info.output.zero_point + 16)
        classifier.info = replace(classifier.info, output=shifted)
        wrong = _raw_probabilities(classifier, pixels)
        assert np.abs(wrong.sum(1) - 1).max() > 0.05  # the same check catches a zero point 16 steps off


def test_predict_table_and_errors(tiny_run, tmp_path):
    run = tiny_run
    images = _test_images(run)
    result = CliRunner().invoke(app, ["predict", str(run), images[0]])
    assert result.exit_code == 0 and default_artifact(read_artifacts(run)).name in result.output
    bad = CliRunner().invoke(app, ["predict", str(run), images[0], "--artifact", "nope"])
    assert bad.exit_code == 2 and "--artifact nope: not in artifacts.json" in bad.output
    missing = CliRunner().invoke(app, ["predict", str(run), str(tmp_path / "none.png")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for i, image in enumerate(images[:3]):
        shutil.copy(image, folder / ("nested" if i else ".") / f"{i}.png")
    (folder / ".hidden.png").write_bytes(b"")
    listed = CliRunner().invoke(app, ["predict", str(run), str(folder), "--json"])
    assert [Path(r["image"]).name for r in json.loads(listed.output)] == ["0.png", "1.png", "2.png"]


def test_bare_files_describe_themselves(tiny_run):
    run = tiny_run
    for a in read_artifacts(run):
        described = describe_file(run / a.path)
        assert described.labels == CLASSES and described.input == a.input and described.output == a.output


def test_default_artifact_is_the_best_validated_int8(tiny_run):
    run = tiny_run
    entries = read_artifacts(run)
    best = default_artifact(entries)
    assert best.precision.startswith("int8")
    assert best.validation["accuracy"] == max(
        a.validation["accuracy"] for a in entries if a.precision.startswith("int8")
    )


def test_same_precision_tflite_and_onnx_agree_on_float(tiny_run):
    run = tiny_run
    images = _test_images(run)
    a = open_classifier(run, "tflite-fp32").predict_files(images)
    b = open_classifier(run, "onnx-fp32").predict_files(images)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_reference_kernels_are_portable_and_close_to_the_fast_ones(tiny_run):
    """--kernels reference runs LiteRT's portable integer kernels: the same outputs whatever the
    thread count, equal to TensorFlow's own build of those kernels, and within a few quantization
    steps of XNNPACK's (whose requantization rounds differently per ISA)."""
    import tensorflow as tf

    run = tiny_run
    images = _test_images(run)
    reference = open_classifier(run, "tflite-int8-qat", threads=1, kernels="reference")
    assert reference.engine == "LiteRT (reference kernels)"
    ref = reference.predict_files(images, batch_size=1)
    assert np.array_equal(
        ref, open_classifier(run, "tflite-int8-qat", threads=2, kernels="reference").predict_files(images, batch_size=1)
    )
    fast = open_classifier(run, "tflite-int8-qat").predict_files(images, batch_size=1)
    assert fast.shape == ref.shape
    # How far XNNPACK is from these kernels depends on the model and the CPU (tens of quantization
    # steps on this barely trained QAT model): export measures it (parity kernel_spread), verify uses it.

    path = run / {a.name: a for a in read_artifacts(run)}["tflite-int8-qat"].path
    tf_ref = tf.lite.Interpreter(
        model_path=str(path), experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF
    )
    tf_ref.allocate_tensors()
    inp, out = tf_ref.get_input_details()[0]["index"], tf_ref.get_output_details()[0]["index"]
    for k, image in enumerate(images):
        pixels = reference.prepare(load_image(image, reference.info.image_size)[None])
        tf_ref.set_tensor(inp, pixels)
        tf_ref.invoke()
        np.testing.assert_array_equal(reference.finish(tf_ref.get_tensor(out)), ref[k : k + 1])


def test_reference_kernels_cli(tiny_run):
    run = tiny_run
    image = _test_images(run)[0]
    ok = CliRunner().invoke(
        app, ["predict", str(run), image, "--artifact", "tflite-int8-qat", "--kernels", "reference", "--json"]
    )
    assert ok.exit_code == 0 and len(json.loads(ok.output)[0]["top_k"]) == 3
    onnx = CliRunner().invoke(
        app, ["predict", str(run), image, "--artifact", "onnx-int8-ptq", "--kernels", "reference"]
    )
    assert onnx.exit_code == 2 and "ONNX Runtime has no reference kernels" in onnx.output
    bad = CliRunner().invoke(app, ["predict", str(run), image, "--kernels", "exact"])
    assert bad.exit_code == 2 and "--kernels 'exact': Input should be 'fast' or 'reference'" in bad.output


@pytest.mark.parametrize(
    "name, blocked, message",
    [
        (
            "tflite-int8-qat",
            ["ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime", "tflite_runtime.interpreter"],
            "no TFLite interpreter installed; pip install ai-edge-litert",
        ),
        ("onnx-int8-ptq", ["onnxruntime"], "onnxruntime is not installed; pip install onnxruntime"),
    ],
)
def test_a_missing_engine_is_a_one_line_error(tiny_run, name, blocked, message):
    run = tiny_run
    image = _test_images(run)[0]
    code = (
        NO_TF
        + "".join(f"sys.modules[{m!r}] = None; " for m in blocked)
        + f"sys.argv = ['edgeclf', 'predict', {str(run)!r}, {image!r}, '--artifact', {name!r}]; "
        + "from edgeclf.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: "[]", "field 'artifacts' must be a list of at most 256 entries"),
        (lambda text: text.replace('"zero_point": 0', '"zero_point": "zero"', 1), "field 'input.zero_point'"),
        (lambda text: text.replace('"input": {', '"inputs": {', 1), "field 'input': Field required"),
        (lambda text: text.replace('"size": [\n', '"size": [\n99999,\n'), "'preprocessing.size' must be"),
        (lambda text: text + " " * (9 * 2**20), "over 8 MiB; not an edgeclf artifacts.json"),
    ],
)
def test_a_malformed_artifacts_json_is_one_error_line_naming_the_file_and_field(tiny_run, tmp_path, edit, message):
    export = tmp_path / "export"
    shutil.copytree(tiny_run / "export", export)
    index = export / "artifacts.json"
    index.write_text(edit(index.read_text()))
    image = _test_images(tiny_run)[0]
    result = CliRunner().invoke(app, ["predict", str(export), image])
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert str(index) in " ".join(result.output.split()) and message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def _export_copy(tiny_run, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(tiny_run / "export", export)
    return export


def test_a_changed_artifact_is_refused_unless_asked(tiny_run, tmp_path):
    export = _export_copy(tiny_run, tmp_path)
    (export / "model_fp32.onnx").write_bytes((export / "model_int8_ptq.onnx").read_bytes())
    image = _test_images(tiny_run)[0]
    for command in (["predict", str(export), image], ["bench", str(export), "--images", image, "--runs", "2"]):
        refused = CliRunner().invoke(app, [*command, "--artifact", "onnx-fp32"] if command[0] == "predict" else command)
        assert refused.exit_code == 2 and "changed since export" in refused.output, refused.output
        assert "model_fp32.onnx" in refused.output and "--no-integrity-check" in " ".join(refused.output.split())
    allowed = CliRunner().invoke(
        app, ["predict", str(export), image, "--artifact", "onnx-fp32", "--no-integrity-check"]
    )
    assert allowed.exit_code == 0, allowed.output


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("model_fp32.tflite", b"", "not a TFLite model"),
        ("model_fp32.tflite", b"\x00" * 64, "not a TFLite model"),
        ("model_fp32.tflite", b"\xff\xff\xff\x7fTFL3" + b"\x00" * 56, "a damaged TFLite flatbuffer"),
        ("model_fp32.onnx", b"\x08\x07garbage" * 10, "ONNX Runtime could not load it"),
    ],
)
def test_a_malformed_model_file_is_one_error_line(tiny_run, tmp_path, name, content, message):
    export = _export_copy(tiny_run, tmp_path)
    (export / name).write_bytes(content)
    artifact = "tflite-fp32" if name.endswith(".tflite") else "onnx-fp32"
    for target in ([str(export), "--artifact", artifact, "--no-integrity-check"], [str(export / name)]):
        result = CliRunner().invoke(app, ["predict", *target[:1], _test_images(tiny_run)[0], *target[1:]])
        assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
        assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a["output"].update(scale=0.0), "needs a finite scale above 0"),
        (lambda a: a["input"].update(zero_point=300), "needs a finite scale above 0"),
        (lambda a: a.update(labels=["bag", "sneaker"]), "the model gives 3 outputs but its description lists 2 labels"),
    ],
)
def test_inconsistent_descriptions_are_refused(tiny_run, tmp_path, edit, message):
    export = _export_copy(tiny_run, tmp_path)
    index = json.loads((export / "artifacts.json").read_text())
    entry = next(a for a in index["artifacts"] if a["name"] == "tflite-int8-ptq")
    edit(entry)
    (export / "artifacts.json").write_text(json.dumps(index))
    result = CliRunner().invoke(
        app, ["predict", str(export), _test_images(tiny_run)[0], "--artifact", "tflite-int8-ptq"]
    )
    assert result.exit_code == 2 and message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_file_names_are_printed_literally_never_as_console_markup(tiny_run, tmp_path, monkeypatch):
    odd = tmp_path / "[red]odd [link=x]name.png"  # no closing tags: a file name cannot hold "/"
    odd.write_bytes(Path(_test_images(tiny_run)[0]).read_bytes())
    broken = tmp_path / "[bold]broken.png"
    broken.write_bytes(b"not an image")
    monkeypatch.chdir(tmp_path)  # short relative names: the table does not wrap them
    result = CliRunner().invoke(app, ["predict", str(tiny_run), odd.name, broken.name])
    assert result.exit_code == 0, result.output
    assert "[red]odd [link=x]name.png" in result.output and "[bold]broken.png" in result.output


def test_8bit_int8_onnx_on_x86_without_vnni_is_flagged():
    """The int8 ONNX with full 8-bit weights (chosen for a pretrained backbone) can saturate on
    ONNX Runtime's x86 kernels without VNNI: runners say so there, nowhere else."""
    from edgeclf.runtime.machine import cpu_flags, int8_saturation_risk

    eight = "onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, 8-bit, ...)"
    seven = "onnxruntime.quantization.quantize_static (QDQ, per-channel int8 weights, 7-bit (reduce_range), ...)"
    assert int8_saturation_risk(eight, "x86_64", {"avx2", "fma"})
    assert not int8_saturation_risk(eight, "x86_64", {"avx2", "avx512_vnni"})
    assert not int8_saturation_risk(eight, "x86_64", {"avx2", "avx_vnni"})
    assert not int8_saturation_risk(seven, "x86_64", {"avx2"})
    assert not int8_saturation_risk(eight, "aarch64", {"asimd"})
    assert cpu_flags("processor : 0\nflags : fpu avx2 avx512_vnni\n") == {"fpu", "avx2", "avx512_vnni"}
