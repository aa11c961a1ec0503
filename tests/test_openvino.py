"""OpenVINO as a runtime backend: the openvino-* artifacts, --engine, precision pinning, bf16."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.run_directory import Run
from edgeclf.measure.latency import speedups
from edgeclf.runtime import backends, read_artifacts
from edgeclf.runtime.backends import engines, openvino_backend
from edgeclf.runtime.open import default_artifact, open_classifier

pytest.importorskip("openvino")
needs_bf16 = pytest.mark.skipif(not backends.native_bf16(), reason="this CPU has no native bf16 (OpenVINO)")
NO_TF = "import sys; sys.modules['tensorflow'] = None; sys.modules['tf_keras'] = None; "


def _test_pixels(run):
    r = Run.open(run)
    pixels, labels, _ = r.images("test")
    return pixels, labels


def test_the_fixture_has_openvino_entries_validated_on_openvino(tiny_run):
    entries = {a.name: a for a in read_artifacts(tiny_run)}
    for name, shares in (("openvino-fp32", "onnx-fp32"), ("openvino-int8-ptq", "onnx-int8-ptq")):
        entry = entries[name]
        assert entry.engine == "openvino" and entry.status == "ok", name
        assert entry.path == entries[shares].path and entry.sha256 == entries[shares].sha256  # the same file
    assert entries["openvino-fp32"].validation["max_abs_diff"] <= entries["openvino-fp32"].validation["tolerance"]
    assert entries["onnx-fp32"].engine == ""  # the format's default: ONNX Runtime


def test_fp32_runs_pinned_to_f32_and_matches_onnxruntime(tiny_run):
    pixels, _ = _test_pixels(tiny_run)
    ov = open_classifier(tiny_run, "openvino-fp32")
    ort = open_classifier(tiny_run, "onnx-fp32")
    assert ov.backend.precision_used == "f32" and ov.engine == "OpenVINO (CPU, f32)"
    assert ort.engine.startswith("onnxruntime")
    assert np.abs(ov.predict_pixels(pixels) - ort.predict_pixels(pixels)).max() < 1e-4
    # --engine openvino on the ONNX Runtime entry: the same file on OpenVINO, also pinned to f32
    forced = open_classifier(tiny_run, "onnx-fp32", engine="openvino")
    assert forced.engine == "OpenVINO (CPU, f32)"
    assert np.abs(forced.predict_pixels(pixels) - ort.predict_pixels(pixels)).max() < 1e-4


def test_int8_on_openvino_keeps_the_top1_of_onnxruntime(tiny_run):
    pixels, labels = _test_pixels(tiny_run)
    ov = open_classifier(tiny_run, "openvino-int8-ptq").predict_pixels(pixels)
    ort = open_classifier(tiny_run, "onnx-int8-ptq").predict_pixels(pixels)
    assert (ov.argmax(1) == ort.argmax(1)).mean() >= 0.9
    assert np.allclose(ov.sum(1), 1, atol=1e-5)


def test_batch_sizes_compile_once_each_and_stay_bounded(tiny_run):
    clf = open_classifier(tiny_run, "openvino-fp32")
    pixels, _ = _test_pixels(tiny_run)
    one_by_one = np.concatenate([clf.predict_pixels(pixels[i : i + 1]) for i in range(len(pixels))])
    assert np.abs(clf.predict_pixels(pixels, batch_size=4) - one_by_one).max() < 1e-5
    for batch in range(1, 9):
        clf.predict_pixels(pixels[:batch])
    assert len(clf.backend._requests) == backends.MAX_COMPILED_SHAPES


@needs_bf16
def test_bf16_is_its_own_precision_never_reported_as_fp32(tiny_run):
    entry = {a.name: a for a in read_artifacts(tiny_run)}["openvino-bf16"]
    assert entry.precision == "bf16" and entry.status == "ok"
    assert entry.validation["check"] == "p99_abs_diff" and entry.validation["tolerance"] == 5e-2
    assert entry.validation["p99_abs_diff"] <= entry.validation["max_abs_diff"]
    assert entry.validation["agreement_with_float"] >= 0.99
    clf = open_classifier(tiny_run, "openvino-bf16")
    assert clf.backend.precision_used == "bf16" and clf.engine == "OpenVINO (CPU, bf16)"
    pixels, _ = _test_pixels(tiny_run)
    fp32 = open_classifier(tiny_run, "openvino-fp32").predict_pixels(pixels)
    diff = np.abs(clf.predict_pixels(pixels) - fp32).max()
    assert 0 < diff < 5e-2  # bf16 really ran: not bit-equal to f32, and within its tolerance


def test_bf16_is_refused_on_a_cpu_without_it(tiny_run, monkeypatch):
    entry = {a.name: a for a in read_artifacts(tiny_run)}["openvino-fp32"]
    monkeypatch.setattr(openvino_backend, "native_bf16", lambda core=None: False)  # where the backend looks
    with pytest.raises(EdgeclfError, match="no native bf16 on this CPU"):
        backends.OpenVinoBackend(tiny_run / entry.path, precision="bf16")


def test_engine_option_errors_are_one_line(tiny_run):
    image = str(Run.open(tiny_run).dataset.root / Run.open(tiny_run).dataset.split("test")[0].path)

    def predict(*args):
        return CliRunner().invoke(app, ["predict", str(tiny_run), image, *args])

    tfl = predict("--artifact", "tflite-fp32", "--engine", "openvino")
    assert tfl.exit_code == 2 and "is a TFLite file (it runs on LiteRT)" in tfl.output
    bad = predict("--engine", "tensorrt")
    assert bad.exit_code == 2 and "--engine 'tensorrt': Input should be 'auto', 'onnxruntime' or 'openvino'" in (
        bad.output
    )
    if backends.native_bf16():
        ort = predict("--artifact", "openvino-bf16", "--engine", "onnxruntime")
        assert ort.exit_code == 2 and "bf16 artifacts run on OpenVINO only" in ort.output
    ok = predict("--artifact", "onnx-int8-ptq", "--engine", "openvino")
    assert ok.exit_code == 0 and "OpenVINO (CPU, f32)" in ok.output
    for result in (tfl, bad, ok):
        assert "Traceback" not in result.output


def test_without_openvino_the_device_side_says_what_to_install(tiny_run):
    image = str(Run.open(tiny_run).dataset.root / Run.open(tiny_run).dataset.split("test")[0].path)
    code = (
        NO_TF
        + "sys.modules['openvino'] = None; "
        + f"sys.argv = ['edgeclf', 'predict', {str(tiny_run)!r}, {image!r}, '--artifact', 'openvino-fp32']; "
        + "from edgeclf.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "OpenVINO is not installed; pip install 'edgeclf[openvino]'" in proc.stderr


def test_openvino_runs_without_tensorflow(tiny_run):
    code = NO_TF + (
        "import json; from edgeclf.runtime.open import open_classifier; import numpy as np; "
        f"c = open_classifier({str(tiny_run)!r}, 'openvino-int8-ptq'); "
        "print(json.dumps(c.predict_pixels(np.zeros((2, 32, 32, 3), np.uint8)).shape)); "
        "assert 'tensorflow' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [2, 3]


def test_default_artifact_skips_engines_not_installed(tiny_run, monkeypatch):
    entries = read_artifacts(tiny_run)
    for entry in entries:  # make the OpenVINO int8 entry the most accurate one
        if entry.name == "openvino-int8-ptq":
            entry.validation["accuracy"] = 1.01
    assert default_artifact(entries).name == "openvino-int8-ptq"
    monkeypatch.setattr("edgeclf.runtime.open.engine_available", lambda engine: engine != "openvino")
    assert default_artifact(entries).engine != "openvino"


def test_verify_skips_artifacts_whose_engine_is_missing(tiny_run, monkeypatch):
    from edgeclf.runtime.parity import verify

    monkeypatch.setattr("edgeclf.runtime.parity.engine_available", lambda engine: engine != "openvino")
    result = verify(tiny_run / "export")
    skipped = {c.artifact for c in result.checks if c.skipped}
    assert skipped == {a.name for a in read_artifacts(tiny_run) if a.engine == "openvino"} and result.passed
    with pytest.raises(EdgeclfError, match="OpenVINO is not installed"):  # named: run, and fail clearly
        monkeypatch.setitem(sys.modules, "openvino", None)
        verify(tiny_run / "export", ["openvino-fp32"])


def test_bench_compares_each_precision_with_the_fp32_of_its_own_engine():
    def record(name, precision, engine, p50):
        return {
            "name": name,
            "format": "onnx",
            "precision": precision,
            "engine_name": engine,
            "batches": [{"batch": 1, "p50_ms": p50}],
        }

    results = {
        r["name"]: r
        for r in (
            record("onnx-fp32", "fp32", "onnxruntime", 3.0),
            record("onnx-int8-ptq", "int8-ptq", "onnxruntime", 2.0),
            record("openvino-fp32", "fp32", "openvino", 4.0),
            record("openvino-bf16", "bf16", "openvino", 2.0),
            record("openvino-int8-ptq", "int8-ptq", "openvino", 1.0),
        )
    }
    speedups(results)
    assert results["onnx-int8-ptq"]["speedup_vs_runtime_fp32"] == 1.5
    assert results["openvino-bf16"]["runtime_fp32"] == "openvino-fp32"
    assert results["openvino-bf16"]["speedup_vs_runtime_fp32"] == 2.0
    assert results["openvino-int8-ptq"]["speedup_vs_runtime_fp32"] == 4.0


def test_stages_skip_artifacts_whose_engine_is_not_installed(tiny_run, monkeypatch):
    entries = read_artifacts(tiny_run)
    monkeypatch.setattr(engines, "engine_available", lambda engine: engine != "openvino")
    ok, skipped = backends.runnable(entries)
    assert sorted(skipped) == sorted(a.name for a in entries if a.engine == "openvino") and len(skipped) >= 2
    assert {a.name for a in ok} == {a.name for a in entries} - set(skipped)
    # --engine openvino moves the ONNX Runtime entries onto OpenVINO too: without it they cannot run
    _, moved = backends.runnable(entries, "openvino")
    assert {"onnx-fp32", "onnx-int8-ptq"} <= set(moved) and not any(n.startswith("tflite") for n in moved)


def test_an_explicit_engine_applies_to_the_onnx_files_it_can_run(tiny_run):
    entries = read_artifacts(tiny_run)
    assert {a.name for a in backends.for_engine(entries, "onnxruntime")} == {
        a.name for a in entries if a.format == "onnx" and a.precision != "bf16"
    }
    assert "openvino-bf16" in {a.name for a in backends.for_engine(entries, "openvino")}
    assert backends.for_engine(entries, "auto") == entries == backends.for_engine(entries, None)


@pytest.mark.slow  # evaluate and bench on a copy of the fixture, per engine
@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_evaluate_and_bench_with_an_explicit_engine_on_a_run_with_bf16_entries(tiny_run, tmp_path, engine):
    """Before: `edgeclf evaluate RUN --engine onnxruntime` on any run with an openvino-bf16 entry
    (the fixture has one) ended in "bf16 artifacts run on OpenVINO only", exit 2; bench had its own
    copy of the filter. Both now take the ONNX files the engine can run (issue 22)."""
    from typer.testing import CliRunner

    from edgeclf.cli import app
    from tests.fixtures.make_tiny_run import HERE, install

    if not backends.engine_available(engine):
        pytest.skip(f"{engine} is not installed")
    assert any(a.precision == "bf16" for a in read_artifacts(tiny_run))
    kept = backends.for_engine(read_artifacts(tiny_run), engine)
    assert {a.format for a in kept} == {"onnx"}
    assert ("openvino-bf16" in {a.name for a in kept}) == (engine == "openvino")
    run = install(HERE / "tiny_run", tmp_path / "run")
    result = CliRunner().invoke(app, ["evaluate", str(run), "--engine", engine])
    assert result.exit_code == 0, result.output
    evaluated = set(json.loads((run / "reports" / "eval.json").read_text())["artifacts"])
    assert {a.name for a in kept} <= evaluated
    bench = CliRunner().invoke(
        app,
        [
            "bench",
            str(run),
            "--engine",
            engine,
            "--runs",
            "3",
            "--warmup",
            "1",
            "--batch-sizes",
            "1",
            "--out",
            str(tmp_path / "bench.json"),
        ],
    )
    assert bench.exit_code == 0, bench.output
    assert {a.name for a in kept} <= set(json.loads((tmp_path / "bench.json").read_text())["artifacts"])
