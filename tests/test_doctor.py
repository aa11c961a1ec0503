"""`edgeclf doctor`: the checks on this machine, planted problems named with their fix in one line,
and exit 1 only when the training side is asked for and cannot work."""

import json

import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.device import doctor

runner = CliRunner()


def _checks(output: str) -> dict:
    return {c["name"]: c for c in json.loads(output)["checks"]}


def test_a_tf_keras_that_does_not_match_tensorflow_fails_the_training_side(monkeypatch):
    """Without the TensorFlow probe: the versions alone show the mix-up; a failure with --training,
    information without it."""
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda name: "2.15.0" if name == "tf-keras" else real(name))
    if not real("tensorflow"):
        pytest.skip("no TensorFlow here: the training side is not installed")
    report = doctor.diagnose(training=True, folder=doctor.Path("."), probe=False)
    keras = next(c for c in report.checks if c.name == "keras")
    assert keras.status == "fail" and "tf-keras 2.15.0 does not match tensorflow" in keras.detail
    assert keras.fix == f"pip install 'tf-keras=={'.'.join(real('tensorflow').split('.')[:2])}.*'"
    relaxed = doctor.diagnose(training=False, folder=doctor.Path("."), probe=False)
    assert next(c for c in relaxed.checks if c.name == "keras").status == "info" and not relaxed.failed


def test_cpu_engines_and_disk_are_reported(tmp_path):
    report = doctor.diagnose(training=False, folder=tmp_path, probe=False)
    names = {c.name: c for c in report.checks}
    assert {"python", "packages", "engine litert", "engine onnxruntime", "cpu", "disk"} <= set(names)
    assert names["engine onnxruntime"].status == "ok" and "CPUExecutionProvider" in names["engine onnxruntime"].detail
    assert "logical cores" in names["cpu"].detail and "GiB free in" in names["disk"].detail
    assert report.packages["numpy"] and report.to_json()["failed"] == 0


@pytest.mark.slow  # imports TensorFlow in a child process: a few seconds
def test_keras_2_in_effect_passes_and_keras_3_is_named_with_its_fix(monkeypatch):
    pytest.importorskip("tf_keras")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    result = runner.invoke(app, ["doctor", "--training", "--json"])
    assert result.exit_code == 0, result.output
    keras = _checks(result.output)["keras"]
    assert keras["status"] == "ok" and keras["detail"].startswith("Keras 2 (tf-keras 2.")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")  # planted: what a script importing TensorFlow first gets
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    keras = _checks(runner.invoke(app, ["doctor", "--json"]).output)["keras"]
    assert keras["status"] == "warn" and keras["detail"].startswith("Keras 3 (")
    assert (
        keras["fix"] == "export TF_USE_LEGACY_KERAS=1 before Python starts (in a notebook: before importing tensorflow)"
    )
    assert "TF_USE_LEGACY_KERAS=1" in " ".join(result.output.split())
