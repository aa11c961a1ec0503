"""edgeclf.core.bounded, the one reader of JSON and YAML from outside, and every reader that uses it:
before issue 21, a 100,000-deep file gave a RecursionError traceback in each of them, wrong
top-level types crashed some, and NaN in `normalization` was accepted."""

import json
import shutil
import zipfile

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.bounded import BoundedReadError, excerpt, loads_json, loads_yaml

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "text, message",
    [
        (DEEP, "nested 100000 levels deep, over the 64 allowed"),
        ('{"scale": NaN}', "NaN is not a number JSON allows"),
        ('{"scale": -Infinity}', "-Infinity is not a number JSON allows"),
        ('{"scale": 1e999}', "number '1e999' is out of range"),
        ('{"a": 1, "a": 2}', "key 'a' appears twice"),
        (b"\xef\xbb\xbf{}", "byte-order mark"),
        (b'{"a": "\xff"}', "not UTF-8 text"),
        ('{"a": [1, 2}', "not valid JSON"),
    ],
)
def test_bounded_json_refuses_in_one_line(text, message):
    with pytest.raises(BoundedReadError, match=message) as caught:
        loads_json(text, "x.json")
    assert str(caught.value).startswith("x.json: ") and "\n" not in str(caught.value)


def test_bounded_json_keeps_what_is_valid():
    text = '{"s": "[[[[{{{{", "n": [1.5, -2, 3e5], "deep": ' + "[" * 60 + "]" * 60 + "}"
    assert loads_json(text, "x")["s"] == "[[[[{{{{"  # brackets in strings are not nesting
    with pytest.raises(BoundedReadError, match="over 10 bytes"):
        loads_json("[" + "1," * 10 + "1]", "x", max_bytes=10)


def test_bounded_yaml_counts_aliases_and_depth_and_refuses_unsafe_tags():
    assert loads_yaml("a: &x [1, 2]\nb: *x\n", "s.yaml") == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(BoundedReadError, match="could not determine a constructor"):
        loads_yaml("x: !!python/object/apply:os.system ['true']\n", "s.yaml")
    with pytest.raises(BoundedReadError, match="nested over 64 levels deep"):
        loads_yaml("[" * 100 + "]" * 100, "s.yaml")


def test_excerpt_never_builds_a_huge_repr():
    assert excerpt(list(range(10**6))) == "<list of 1000000 items>"
    assert len(excerpt("x" * 10**7)) == 60 and excerpt("a\x1b[2J") == "'a\\x1b[2J'"


def _export(tiny_run, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(tiny_run / "export", export)
    return export


def _one_error(result, message):
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert message in result.output and "Traceback" not in result.output and len(result.output) < 600


def _image(tiny_run):
    return str(sorted((tiny_run / "export" / "parity" / "samples").iterdir())[0])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda index: DEEP, "nested 100000 levels deep"),
        (lambda index: "[1]", "field 'artifacts' must be a list"),
        (lambda index: index.replace('"scale": 0.00784313', '"scale": NaN', 1), "NaN is not a number JSON allows"),
    ],
)
def test_artifacts_json(tiny_run, tmp_path, edit, message):
    export = _export(tiny_run, tmp_path)
    index = export / "artifacts.json"
    text = index.read_text()
    assert '"scale": 0.00784313' in text  # the normalization scale the NaN case replaces
    index.write_text(edit(text))
    _one_error(CliRunner().invoke(app, ["predict", str(export), _image(tiny_run)]), message)


def test_normalization_must_be_finite_numbers(tiny_run, tmp_path):
    """A NaN normalization gave plausible wrong answers from int8 files and bare NaN in --json."""
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.runtime.artifact import ArtifactInfo

    entry = json.loads((tiny_run / "export" / "artifacts.json").read_text())["artifacts"][0]
    for bad in ({"scale": float("nan"), "offset": -1.0}, {"scale": 0.0, "offset": -1.0}, {"scale": "1", "offset": 0}):
        with pytest.raises(EdgeclfError, match="field 'normalization' needs finite numbers"):
            ArtifactInfo.from_json({**entry, "normalization": bad})


@pytest.mark.parametrize(
    "reference, message",
    [
        (DEEP, "nested 100000 levels deep"),
        ('{"version": 1, "samples": [{}], "artifacts": {}, "tolerances": []}', "tolerances must give fp32 and fp16"),
        ("[1]", "expected a JSON object"),
    ],
)
def test_parity_reference_json(tiny_run, tmp_path, reference, message):
    export = _export(tiny_run, tmp_path)
    (export / "parity" / "reference.json").write_text(reference)
    _one_error(CliRunner().invoke(app, ["verify", str(export)]), message)


def test_the_description_inside_a_tflite(tiny_run, tmp_path):
    model = tmp_path / "model_fp32.tflite"
    content = (tiny_run / "export" / "model_fp32.tflite").read_bytes()
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as archive:
        archive.writestr("edgeclf.json", DEEP)
    model.write_bytes(content + (tmp_path / "z.zip").read_bytes())
    _one_error(CliRunner().invoke(app, ["predict", str(model), _image(tiny_run)]), "nested 100000 levels deep")


@pytest.mark.parametrize("value, message", [("not json {", "not valid JSON"), (DEEP, "nested 100000 levels deep")])
def test_the_description_in_onnx_metadata(tiny_run, tmp_path, value, message):
    import onnx

    model = onnx.load(tiny_run / "export" / "model_fp32.onnx")
    for prop in model.metadata_props:
        if prop.key == "edgeclf.artifact":
            prop.value = value
    onnx.save(model, tmp_path / "model_fp32.onnx")
    _one_error(CliRunner().invoke(app, ["predict", str(tmp_path / "model_fp32.onnx"), _image(tiny_run)]), message)


def test_bundle_json(tmp_path):
    import io
    import tarfile

    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = DEEP.encode()
        info = tarfile.TarInfo("bundle.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _one_error(CliRunner().invoke(app, ["unpack", str(archive), str(tmp_path / "out")]), "nested 100000 levels deep")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("manifest, message", [(DEEP, "nested 100000 levels deep"), ("[1]", "expected a JSON object")])
def test_pack_json(tmp_path, manifest, message):
    from edgeclf.core.errors import DataError
    from edgeclf.data.packed import open_pack

    (tmp_path / "pack.json").write_text(manifest)
    with pytest.raises(DataError, match=message) as caught:
        open_pack(tmp_path)
    assert len(str(caught.value)) < 300


def test_report_bench_files(tmp_path):
    """bench.json files from other devices, merged by edgeclf report."""
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.measure.report import _load_json

    bench = tmp_path / "bench.json"
    for text, message in ((DEEP, "nested 100000 levels deep"), ("[1]", "expected a JSON object")):
        bench.write_text(text)
        with pytest.raises(EdgeclfError, match=message):
            _load_json(bench, "run edgeclf bench")
