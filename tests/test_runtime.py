"""The device side: predict and edgeclf.runtime without TensorFlow, and their output contract."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.images import load_image
from edgeclf.core.run_directory import Run
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


@pytest.mark.slow  # several seconds: the whole suite runs it (the fast one stays under 3 minutes)
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
    # How far XNNPACK is from these kernels depends on the model and the CPU (export measured 3 steps
    # of 1/256 on its CPU: parity kernel_spread; verify uses it). A margin that holds on any CPU: at
    # most 32 steps apart, and the same top-1 wherever the reference's top two are over 64 steps apart.
    step = reference.info.output.scale
    assert np.abs(fast - ref).max() <= 32 * step
    top2 = np.sort(ref, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > 64 * step
    assert decisive.any() and (fast.argmax(1) == ref.argmax(1))[decisive].all()

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
        (lambda text: text + " " * (9 * 2**20), "artifacts.json: over 8 MiB; re-export"),
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
        ("model_fp32.onnx", b"\x08\x07garbage" * 10, r"not a well-formed ONNX model \(wire type 7\)"),
        ("model_fp32.onnx", b"", "not an ONNX model"),
        (
            "model_fp32.onnx",
            b"\x08\x07\x12\x02ab" * 10,
            "ONNX Runtime could not load it|carries no edgeclf description",
        ),  # a protobuf
    ],
)
def test_a_malformed_model_file_is_one_error_line(tiny_run, tmp_path, name, content, message):
    export = _export_copy(tiny_run, tmp_path)
    (export / name).write_bytes(content)
    artifact = "tflite-fp32" if name.endswith(".tflite") else "onnx-fp32"
    for target in ([str(export), "--artifact", artifact, "--no-integrity-check"], [str(export / name)]):
        result = CliRunner().invoke(app, ["predict", *target[:1], _test_images(tiny_run)[0], *target[1:]])
        assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
        assert re.search(message, result.output) and "Traceback" not in result.output


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


def _appended_zip(members: dict[str, bytes], patch=None) -> bytes:
    """A zip of `members` (deflated); patch(info_fields) may rewrite the headers' fields."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    data = bytearray(buf.getvalue())
    if patch:
        patch(data)
    return bytes(data)


def _set_all(data: bytearray, signature: bytes, offset: int, fmt: str, value: int) -> None:
    """Set a field at `offset` after every `signature` (local 'PK\\x03\\x04', central 'PK\\x01\\x02')."""
    import struct

    at = data.find(signature)
    while at >= 0:
        struct.pack_into(fmt, data, at + offset, value)
        at = data.find(signature, at + 4)


def _bare_tflite(tiny_run, tmp_path, appended: bytes) -> Path:
    source = Run.open(tiny_run).path / "export" / "model_fp32.tflite"
    target = tmp_path / "model_fp32.tflite"
    target.write_bytes(source.read_bytes() + appended)
    return target


def _deflate_bomb(size: int) -> bytes:
    """`size` zero bytes, deflated in pieces (a few hundred KB for 256 MiB)."""
    import zlib

    squeeze, zeros, out = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(1 << 20), []
    out += [squeeze.compress(zeros) for _ in range(size >> 20)]
    return b"".join(out) + squeeze.flush()


@pytest.mark.parametrize(
    "case, message",
    [
        ("entries", "declares 20 entries, over 16"),
        ("encrypted", "edgeclf.json in its appended zip is encrypted"),
        ("method93", "uses compression method 93"),
        ("corrupt", "edgeclf.json in its appended zip is damaged"),
        ("zip64", "declares 4294967296 entries"),
    ],
)
def test_a_hostile_appended_zip_is_one_error_line(tiny_run, tmp_path, case, message):
    """Before: an encrypted, method-93 or corrupt member gave a traceback and a zip of millions of
    entries cost gigabytes (zipfile parses the whole directory): now the entry count is read from
    the end record first and each member's method and flags are checked (issue 21)."""
    description = json.dumps({"name": "x"}).encode() * 50
    if case == "entries":
        appended = _appended_zip({f"f{i}": b"x" for i in range(20)})
    elif case == "encrypted":
        appended = _appended_zip({"edgeclf.json": description}, lambda d: _set_all(d, b"PK\x01\x02", 8, "<H", 1))
    elif case == "method93":
        appended = _appended_zip(
            {"edgeclf.json": description},
            lambda d: (_set_all(d, b"PK\x03\x04", 8, "<H", 93), _set_all(d, b"PK\x01\x02", 10, "<H", 93)),
        )
    elif case == "corrupt":
        good = _appended_zip({"edgeclf.json": description})
        at = good.index(b"edgeclf.json") + len("edgeclf.json")  # the deflated bytes follow the local header's name
        appended = good[:at] + bytes([good[at] ^ 0xFF] * 8) + good[at + 8 :]
    else:  # the end record's entry count 0xFFFF says ZIP64: refused, not parsed
        appended = _appended_zip({"edgeclf.json": description}, lambda d: _set_all(d, b"PK\x05\x06", 10, "<H", 0xFFFF))
    model = _bare_tflite(tiny_run, tmp_path, appended)
    result = CliRunner().invoke(app, ["predict", str(model), _test_images(tiny_run)[0]])
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_an_appended_member_that_inflates_past_its_header_is_refused_in_bounded_memory(tiny_run, tmp_path):
    """edgeclf.json declared as 1,000 bytes but inflating to 256 MiB: zipfile's read() inflated it
    whole before truncating (2.1 GB RSS for a 1 GiB one); read in pieces, memory stays small."""
    import io
    import tracemalloc
    import zipfile

    from edgeclf.runtime.embedded import tflite_member

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("edgeclf.json", b"{}")
    bomb = _deflate_bomb(256 << 20)
    good = buf.getvalue()
    start = good.index(b"edgeclf.json") + len("edgeclf.json")
    end = good.index(b"PK\x01\x02")
    import struct

    data = bytearray(good[:start] + bomb + good[end:])
    struct.pack_into("<I", data, 18, len(bomb))  # local header: compressed size
    struct.pack_into("<I", data, 22, 1000)  # local header: uncompressed size, a lie
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 20, len(bomb))
    struct.pack_into("<I", data, central + 24, 1000)
    eocd = data.index(b"PK\x05\x06")
    struct.pack_into("<I", data, eocd + 16, central)  # where the central directory now starts
    model = _bare_tflite(tiny_run, tmp_path, bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(Exception, match="edgeclf.json in its appended zip is damaged"):
            tflite_member(model, "edgeclf.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB while reading a 256 MiB bomb"


def _onnx_with_external(tmp_path, length: int, location: str = "weights.bin") -> Path:
    """A tiny ONNX model (Identity on a [1] input, plus an initializer) whose initializer's data
    lies in `location` with the given length."""
    import onnx
    from onnx import TensorProto, helper

    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[length // 4])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [weight],
    )
    model = helper.make_model(graph)
    helper.set_model_props(model, {"edgeclf.artifact": json.dumps({"name": "x"})})
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    return path


def test_the_model_size_cap_counts_onnx_external_data(tmp_path):
    """Before: a 1.6 MB .onnx whose external data held a 3 GiB initializer ran at 6.2 GB RSS (the
    2 GiB cap looked at the .onnx alone). The scan reads the references without loading anything."""
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.runtime.integrity import check_model_file
    from edgeclf.runtime.onnx_scan import scan

    model = _onnx_with_external(tmp_path, 3 * 2**30)
    with open(tmp_path / "weights.bin", "wb") as f:  # sparse: no disk is used
        f.truncate(3 * 2**30)
    assert scan(model).external == {"weights.bin": 3 * 2**30}
    assert json.loads(scan(model).metadata["edgeclf.artifact"]) == {"name": "x"}
    with pytest.raises(EdgeclfError, match=r"and 3221225472 of external data, over 2 GiB"):
        check_model_file(model)
    escaping = _onnx_with_external(tmp_path, 1024, "../outside.bin")
    with pytest.raises(EdgeclfError, match="external data '../outside.bin' is not a file beside it"):
        check_model_file(escaping)


def test_a_bare_onnx_is_loaded_once(tiny_run, tmp_path, monkeypatch):
    """describe_file opened its own ONNX Runtime session to read the metadata, then the backend
    another: the model was in memory twice. The description now comes from the scan."""
    import onnxruntime as ort

    source = Run.open(tiny_run).path / "export" / "model_fp32.onnx"
    model = tmp_path / "model_fp32.onnx"
    shutil.copy(source, model)
    sessions = []
    real = ort.InferenceSession

    def counting(*args, **kwargs):
        sessions.append(args[0] if args else kwargs.get("path_or_bytes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    result = CliRunner().invoke(app, ["predict", str(model), _test_images(tiny_run)[0], "--json"])
    assert result.exit_code == 0, result.output
    assert len(sessions) == 1


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda h, w: np.zeros((1, h, w, 3), np.float32), ValueError, "must be uint8"),
        (lambda h, w: np.full((1, h, w, 3), np.nan), ValueError, "must be uint8"),
        (lambda h, w: np.ones((1, h, w, 3), bool), ValueError, "must be uint8"),
        (lambda h, w: np.zeros((1, h, w, 3), np.complex64), ValueError, "must be uint8"),
        (lambda h, w: np.zeros((h, w, 3), np.uint8), ValueError, "must have shape \\[N, {h}, {w}, 3\\]"),
        (lambda h, w: np.zeros((2, h + 8, w + 8, 3), np.uint8), ValueError, "not \\[2, {h8}, {w8}, 3\\]"),
        (lambda h, w: np.zeros((1, h, w, 4), np.uint8), ValueError, "must have shape"),
        (lambda h, w: np.zeros((0, h, w, 3), np.uint8), ValueError, "N >= 1"),
        (lambda h, w: [[0]], TypeError, "must be a NumPy array"),
    ],
)
def test_the_api_validates_its_input(tiny_run, make, error, message):
    """Before: Classifier on LiteRT resized the interpreter to the caller's image size when the batch
    changed (answers at the wrong resolution), and NaN, inf, bool and complex arrays were accepted."""
    for name in ("tflite-fp32", "onnx-fp32"):
        classifier = open_classifier(tiny_run, name)
        h, w = classifier.info.image_size
        with pytest.raises(error, match=message.format(h=h, w=w, h8=h + 8, w8=w + 8)):
            classifier.predict_pixels(make(h, w))


def test_litert_resizes_only_the_batch_dimension(tiny_run):
    classifier = open_classifier(tiny_run, "tflite-fp32")
    h, w = classifier.info.image_size
    one = classifier.predict_pixels(np.full((1, h, w, 3), 100, np.uint8))
    three = classifier.predict_pixels(np.full((3, h, w, 3), 100, np.uint8))  # batch 3: resized
    assert np.allclose(three, one[0], atol=1e-5)
    with pytest.raises(ValueError, match=f"model takes \\[N, {h}, {w}, 3\\]"):
        classifier.backend.run(np.zeros((2, h + 8, w + 8, 3), np.float32))
    again = classifier.predict_pixels(np.full((1, h, w, 3), 100, np.uint8))
    assert np.allclose(again, one, atol=1e-5)


def test_device_errors_are_typed_by_what_a_caller_can_do(tiny_run, tmp_path, monkeypatch):
    """Before: half the device-side raises were the bare EdgeclfError: a program embedding the
    runtime could tell "changed since export" from "engine missing" from "malformed index" only by
    matching text (issue 22). Each is its own class now, and still an EdgeclfError."""
    import builtins

    from edgeclf import runtime
    from edgeclf.device.unpack import unpack

    export = _export_copy(tiny_run, tmp_path)
    (export / "model_fp32.onnx").write_bytes((export / "model_int8_ptq.onnx").read_bytes())
    with pytest.raises(runtime.IntegrityError, match="changed since export"):
        open_classifier(export, "onnx-fp32")
    (export / "model_fp32.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(runtime.ModelFileError, match="not a TFLite model"):
        open_classifier(export, "tflite-fp32", integrity=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "artifacts.json").write_text('{"artifacts": [{"name": 1}]}')
    with pytest.raises(runtime.MalformedIndexError, match="field"):
        runtime.read_artifacts(tmp_path / "bad")
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(runtime.EngineMissingError, match="onnxruntime is not installed"):
        open_classifier(tiny_run, "onnx-int8-ptq")
    monkeypatch.setattr(builtins, "__import__", real_import)
    junk = tmp_path / "junk.tar.gz"
    import io
    import tarfile

    with tarfile.open(junk, "w:gz") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(runtime.BundleError, match="absolute or parent-relative"):
        unpack(junk, tmp_path / "out")
    for cls in (runtime.IntegrityError, runtime.ModelFileError, runtime.MalformedIndexError, runtime.BundleError):
        assert issubclass(cls, runtime.EdgeclfError)


def test_precision_is_one_type_that_reads_and_writes_as_its_strings(tiny_run):
    """Before: a free string compared in 20 places across 8 modules (issue 22)."""
    import dataclasses

    from edgeclf.core.precision import Precision
    from edgeclf.runtime.artifact import ArtifactInfo

    entries = {a.name: a for a in read_artifacts(tiny_run)}
    assert (
        entries["tflite-int8-qat"].precision is Precision.INT8_QAT and entries["tflite-int8-qat"].precision.is_integer
    )
    assert entries["openvino-bf16"].precision.openvino_only and entries["openvino-bf16"].precision.is_float
    assert not entries["tflite-dynamic"].precision.is_integer and not entries["tflite-dynamic"].precision.is_float
    assert entries["onnx-fp32"].precision == "fp32" and f"{entries['onnx-fp32'].precision}" == "fp32"
    assert json.loads(json.dumps(dataclasses.asdict(entries["onnx-fp32"])))["precision"] == "fp32"
    entry = json.loads((tiny_run / "export" / "artifacts.json").read_text())["artifacts"][0]
    from edgeclf.core.errors import EdgeclfError

    with pytest.raises(EdgeclfError, match="precision"):
        ArtifactInfo.from_json({**entry, "precision": "int4"})
