"""`edgeclf export --bundle` packs an export that is current and converts only when something it was
made from changed (edgeclf.export.current), saying which."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.run_directory import Run
from edgeclf.export.current import made_from, stale_reason

runner = CliRunner()


@pytest.fixture
def current_run(tiny_run, tmp_path):
    """A copy of the fixture run whose artifacts.json records what it was made from, as an export
    with these settings writes it (first without the record, as an export made before it was kept)."""
    run_dir = shutil.copytree(tiny_run, tmp_path / "run")
    run = Run.open(run_dir)
    index = run.export_dir / "artifacts.json"
    data = json.loads(index.read_text())
    data.pop("made_from", None)
    index.write_text(json.dumps(data))
    assert stale_reason(run, run.config(), True) == (
        "the export was made by an edgeclf that did not record what it was made from"
    )
    data["made_from"] = made_from(run, run.config(), True)
    index.write_text(json.dumps(data))
    assert stale_reason(run, run.config(), True) is None
    return run_dir


@pytest.fixture
def conversions(monkeypatch):
    """export_run replaced by a recorder that converts nothing: the calls it got."""
    import edgeclf.export.stage

    calls = []

    def export_run(run_dir, **kwargs):
        calls.append(run_dir)
        raise EdgeclfError("converted")

    monkeypatch.setattr(edgeclf.export.stage, "export_run", export_run)
    return calls


def test_a_current_export_is_packed_without_converting(current_run, conversions, tmp_path):
    bundle = tmp_path / "b.tar.gz"
    result = runner.invoke(app, ["export", str(current_run), "--int8", "--bundle", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "the export is current (same models, settings and files): packing it" in result.output
    assert bundle.is_file() and conversions == []


@pytest.mark.parametrize(
    ("change", "options", "reason"),
    [
        ("model", [], "model.keras changed since the export"),
        ("qat model", [], "qat_model.h5 changed since the export"),
        ("artifact", [], "model_int8_qat.tflite changed since the export"),
        ("nothing", ["--max-drop", "0.5"], "the export settings differ from those it was made with"),
        ("nothing", ["--no-float16"], "the export settings differ from those it was made with"),
    ],
)
def test_a_stale_export_is_converted_first_and_says_why(current_run, conversions, tmp_path, change, options, reason):
    edited = {"model": "model.keras", "qat model": "qat_model.h5", "artifact": "export/model_int8_qat.tflite"}
    if change in edited:
        with open(current_run / edited[change], "ab") as f:
            f.write(b"\0")
    bundle = tmp_path / "b.tar.gz"
    result = runner.invoke(app, ["export", str(current_run), "--int8", *options, "--bundle", str(bundle)])
    assert f"exporting first: {reason}" in result.output
    assert conversions == [current_run] and result.exit_code == 2 and not bundle.exists()


def test_int8_asked_for_or_not_is_part_of_what_an_export_is(current_run):
    run = Run.open(current_run)
    assert stale_reason(run, run.config(), False) == "int8 artifacts were asked for then, not now"
    (run.export_dir / "artifacts.json").unlink()
    assert stale_reason(run, run.config(), True) == "the run has no export yet"


def test_a_revalidated_edited_file_drops_the_record(current_run):
    """validate after a file was edited judges the file as it is: it no longer comes from the
    recorded models, so the next bundle converts again."""
    from edgeclf.export.stage import revalidate_run

    shutil.copy(current_run / "export" / "model_fp32.tflite", current_run / "export" / "model_fp16.tflite")
    result = revalidate_run(current_run)  # fp32 weights where fp16 ones were: within fp16's tolerance
    assert result.changed == ["tflite-fp16"] and not result.failed
    run = Run.open(current_run)
    assert stale_reason(run, run.config(), True) == (
        "the export was made by an edgeclf that did not record what it was made from"
    )


@pytest.mark.slow
def test_a_real_export_records_what_it_was_made_from(exported):
    """The record export_run writes is the one stale_reason compares with (the session's export was
    made with int8_source both and a dynamic-range file: the same options make it current)."""
    run = Run.open(exported)
    same = run.config({"export.int8_source": "both", "export.dynamic": True})
    assert stale_reason(run, same, True) is None
    assert stale_reason(run, run.config(), True) == "the export settings differ from those it was made with"
