"""edgeclf verify: the exporting machine's outputs on the parity samples, re-run and judged by one rule."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.run_directory import Run
from edgeclf.runtime import read_artifacts
from edgeclf.runtime.parity import PARITY_DIR, REFERENCE, sample_indices, verify

runner = CliRunner()


@pytest.fixture
def export_copy(tiny_run, tmp_path):
    run = tiny_run
    return shutil.copytree(run / "export", tmp_path / "export")


def _edit_reference(export, edit) -> None:
    path = export / PARITY_DIR / REFERENCE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_sample_indices_spread_over_classes():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 10)
    chosen = sample_indices(labels, 9)
    assert np.bincount(labels[chosen]).tolist() == [3, 3, 3]
    assert sample_indices(labels, 100) == list(range(23))


def test_verify_passes_on_the_exporting_machine(tiny_run):
    run = tiny_run
    names = {a.name for a in read_artifacts(run) if a.status == "ok"}
    result = runner.invoke(app, ["verify", str(run / "export")])
    assert result.exit_code == 0, result.output
    for name in names:
        assert f"PASS {name}:" in result.output
    assert "reference kernels: raw outputs bit-identical" in result.output  # the int8 TFLite files
    reference = json.loads((run / "export" / PARITY_DIR / REFERENCE).read_text())
    val = len(Run.open(run).dataset.split("val"))
    assert set(reference["artifacts"]) == names and len(reference["samples"]) == min(20, val)
    int8_tflite = [n for n in names if n.startswith("tflite-int8")]
    assert int8_tflite and all(set(reference["artifacts"][n]["outputs"]) == {"fast", "reference"} for n in int8_tflite)
    assert all(reference["artifacts"][n]["kernel_spread"]["images"] == min(200, val) for n in int8_tflite)
    # the samples are a few KB
    assert sum(p.stat().st_size for p in (run / "export" / PARITY_DIR).rglob("*.png")) < 64 * 1024


def test_a_tampered_artifact_fails(export_copy):
    path = export_copy / "model_int8_qat.tflite"
    assert path.is_file(), sorted(p.name for p in export_copy.iterdir())
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    result = runner.invoke(app, ["verify", str(export_copy)])
    assert result.exit_code == 1
    assert (
        "FAIL tflite-int8-qat: model_int8_qat.tflite: sha256" in result.output
        and "changed since export" in result.output
    )
    assert "error: verification failed for tflite-int8-qat" in result.output
    assert "PASS tflite-fp32" in result.output  # the others are still checked


def test_outputs_beyond_tolerance_fail(export_copy):
    # unedited, every check passes on this CPU (an ONNX int8 file keeps every top-1): each failure
    # below is the edit's, whatever this CPU's int8 rounding
    assert verify(export_copy).passed

    def edit(data):
        data["artifacts"]["tflite-int8-qat"]["outputs"]["reference"][3][1] += 1  # one quantization step
        data["artifacts"]["onnx-fp32"]["outputs"]["fast"][0][0] += 1e-3  # 10x the fp32 tolerance
        row = data["artifacts"]["onnx-int8-ptq"]["outputs"]["fast"][5]
        top = int(np.argmax(row))
        row[top], row[(top + 1) % len(row)] = row[(top + 1) % len(row)] - 1, row[top] + 1  # another top-1

    _edit_reference(export_copy, edit)
    result = verify(export_copy)
    n = result.samples
    verdicts = {c.artifact: c for c in result.checks}
    assert not result.passed
    assert not verdicts["tflite-int8-qat"].passed
    assert "differ by up to 1 quantization steps (must be identical)" in " ".join(verdicts["tflite-int8-qat"].details)
    assert not verdicts["onnx-fp32"].passed and "> tolerance 0.0001" in verdicts["onnx-fp32"].details[0]
    assert (
        not verdicts["onnx-int8-ptq"].passed
        and f"top-1 differs on 1/{n} samples (an ONNX engine has no reference kernels"
        in verdicts["onnx-int8-ptq"].details[0]
    )
    assert verdicts["tflite-fp32"].passed and verdicts["tflite-int8-ptq"].passed


def test_fast_kernels_may_change_only_near_ties(export_copy):
    """An int8 TFLite on the fast kernels may change a sample's class only where the reference
    output's top-1 beats the runner-up by at most twice the exporter's own fast-vs-reference gap."""
    reference = json.loads((export_copy / PARITY_DIR / REFERENCE).read_text())["artifacts"]["tflite-int8-ptq"]
    ref = np.asarray(reference["outputs"]["reference"])
    ordered = np.sort(ref, axis=1)
    sample = int(np.argmax(ordered[:, -1] - ordered[:, -2]))  # the most confident sample
    margin = int(ordered[sample, -1] - ordered[sample, -2])
    assert margin > 0

    def flip(max_steps):
        def edit(data):
            record = data["artifacts"]["tflite-int8-ptq"]
            row = record["outputs"]["fast"][sample]
            top = int(np.argmax(row))
            row[top], row[(top + 1) % len(row)] = 0, 255  # the device answered another class
            record["kernel_spread"]["max_steps"] = max_steps

        return edit

    _edit_reference(export_copy, flip(margin // 2 - 1 if margin > 1 else 0))  # a confident sample changed class
    check = {c.artifact: c for c in verify(export_copy).checks}["tflite-int8-ptq"]
    assert (
        not check.passed
        and "of them confident (reference margin > 2 x" in check.details[0]
        and f"samples {sample}" in check.details[0]
    )
    _edit_reference(export_copy, flip(margin))  # where the kernels' own gap makes it a near-tie, it may
    check = {c.artifact: c for c in verify(export_copy).checks}["tflite-int8-ptq"]
    assert check.passed and "allowed: near-ties" in check.details[0], check.details


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(version=99), "not a valid parity file"),
        (lambda d: d.update(samples=[{"file": "../../../etc/passwd", "sha256": "0"}]), "is missing or outside"),
        (lambda d: d.update(samples=[]), "0 samples"),
        (lambda d: d["samples"][0].update(sha256="0" * 64), "changed since export"),
    ],
)
def test_a_broken_parity_file_is_a_one_line_error(export_copy, edit, message):
    _edit_reference(export_copy, edit)
    result = runner.invoke(app, ["verify", str(export_copy)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_sample_that_is_not_an_image_is_a_one_line_error(export_copy):
    import hashlib

    junk = b"not a png" * 10
    (export_copy / PARITY_DIR / "samples" / "000.png").write_bytes(junk)
    _edit_reference(export_copy, lambda d: d["samples"][0].update(sha256=hashlib.sha256(junk).hexdigest()))
    result = runner.invoke(app, ["verify", str(export_copy)])
    assert result.exit_code == 2 and "not a usable sample image" in result.output and "Traceback" not in result.output


def test_verify_without_parity_data_says_what_to_do(export_copy):
    shutil.rmtree(export_copy / PARITY_DIR)
    result = runner.invoke(app, ["verify", str(export_copy)])
    assert result.exit_code == 2 and "re-export" in result.output


def test_the_recorded_rule_is_data_not_the_docstring(tiny_run):
    """Before: the rule written into reference.json was cut out of parity.py's docstring at run time:
    editing the prose changed every export, and under `python -OO` (no docstrings) export crashed."""
    import subprocess
    import sys

    from edgeclf.runtime.parity import RULE

    recorded = json.loads((tiny_run / "export" / "parity" / "reference.json").read_text())["rule"]
    assert recorded == RULE  # the fixture's exports carry the same rule as before
    code = "import edgeclf.runtime.parity as p; assert p.__doc__ is None and p.RULE.startswith('- every file')"
    assert subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True).returncode == 0
