"""evaluate, bench and report on the committed fixture run (tests/fixtures/tiny_run)."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.run_directory import Run
from edgeclf.measure.metrics import classification_metrics
from edgeclf.runtime import read_artifacts
from edgeclf.runtime.open import open_classifier
from edgeclf.runtime.timing import headline_batch

QUICK = ["--runs", "10", "--warmup", "2", "--batch-sizes", "1"]  # a short bench: the fields, not the numbers

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture(scope="module")
def evaluated(tiny_run, tmp_path_factory):
    """evaluate on a copy of the fixture run: tiny_run is shared by the session and stays as committed."""
    from tests.fixtures.make_tiny_run import HERE, install

    run = install(HERE / "tiny_run", tmp_path_factory.mktemp("reports") / "run")
    result = CliRunner().invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    return run, json.loads((run / "reports" / "eval.json").read_text())


def test_metrics_match_sklearn_on_random_predictions():
    rng = np.random.default_rng(0)
    classes = [f"c{i}" for i in range(7)]
    labels = rng.integers(0, 7, 300)
    probs = rng.dirichlet(np.ones(7), 300)
    probs[labels == 3, 3] += 0.5  # class 3 easier
    probs[:, 6] = 0  # class 6 never predicted: precision 0 (zero_division=0)
    m = classification_metrics(labels, probs, classes)
    pred = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, pred))
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(labels, pred, labels=range(7), zero_division=0)
    for i, c in enumerate(classes):
        assert m["per_class"][c] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = sklearn_metrics.precision_recall_fscore_support(labels, pred, average=avg, zero_division=0)
        assert m[avg] == pytest.approx({"precision": ap, "recall": ar, "f1": af})
    assert m["top5_accuracy"] == pytest.approx(
        sklearn_metrics.top_k_accuracy_score(labels, probs, k=5, labels=range(7))
    )
    assert np.array_equal(m["confusion_matrix"], sklearn_metrics.confusion_matrix(labels, pred, labels=range(7)))


def test_eval_json_equals_an_independent_computation(evaluated):
    run, data = evaluated
    pixels, labels, _ = Run.open(run).images("test")
    assert data["split"] == "test" and data["images"] == len(labels)
    assert set(data["artifacts"]) == {"keras-fp32"} | {a.name for a in read_artifacts(run)}
    for a in read_artifacts(run):
        record = data["artifacts"][a.name]
        pred = open_classifier(run, a.name).predict_pixels(pixels).argmax(1)
        assert record["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, pred))
        matrix = np.array(record["confusion_matrix"])
        assert matrix.sum() == len(labels)
        assert np.array_equal(matrix, sklearn_metrics.confusion_matrix(labels, pred, labels=range(3)))
        f1 = sklearn_metrics.f1_score(labels, pred, average="macro", zero_division=0)
        assert record["macro"]["f1"] == pytest.approx(f1)
        assert (
            (run / "reports" / "confusion" / f"{a.name}.csv")
            .read_text()
            .startswith("true\\predicted,bag,sneaker,trouser")
        )
        assert (run / "reports" / "confusion" / f"{a.name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        data["artifacts"]["keras-fp32"]["delta_points"] == 0 and "top5_accuracy" not in data["artifacts"]["keras-fp32"]
    )
    # where each number comes from: split, machine, engine and version, kernels, threads
    assert data["split"] == "test" and data["machine"]["cpu"] and data["machine"]["machine"]
    assert data["machine"]["versions"]["tensorflow"].startswith("2.")
    for name, record in data["artifacts"].items():
        assert record["engine"] and record["engine_version"] and record["kernels"] and record["threads"], name
    assert (
        data["artifacts"]["tflite-fp32"]["engine"] == "LiteRT (XNNPACK)"
        and data["artifacts"]["tflite-fp32"]["kernels"] == "fast"
    )
    assert data["artifacts"]["keras-fp32"]["engine_version"].startswith("tensorflow 2.")


@pytest.fixture(scope="module")
def benched(evaluated):
    run, _ = evaluated
    result = CliRunner().invoke(
        app, ["bench", str(run), "--runs", "30", "--warmup", "3", "--batch-sizes", "1,4", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    return run, json.loads((run / "reports" / "bench.json").read_text())


def test_bench_json_has_every_artifact_and_field(benched):
    run, data = benched
    assert data["schema_version"] == 2
    assert set(data["spans"]) >= {
        "import_ms",
        "load_ms",
        "first_inference_ms",
        "invoke_ms",
        "preprocess_ms",
        "postprocess_ms",
    }
    assert data["inputs"]["split"] == "test" and data["inputs"]["images"] == min(
        32, len(Run.open(run).dataset.split("test"))
    )
    assert set(data["artifacts"]) == {"keras-fp32"} | {a.name for a in read_artifacts(run)}
    d = data["device"]
    for key in ("cpu", "cores", "isa_flags", "os", "versions", "threads", "machine"):
        assert key in d
    assert d["threads"] == 1 and "onnxruntime" in d["versions"]
    assert data["decode_ms"] > 0
    for name, r in data["artifacts"].items():
        for key in (
            "engine",
            "load_ms",
            "first_inference_ms",
            "preprocess_ms",
            "postprocess_ms",
            "import_ms",
            "engine_version",
            "kernels",
            "peak_rss_mb",
            "file_bytes",
            "speedup_vs_keras",
            "speedup_vs_runtime_fp32",
            "samples_ms_batch1",
        ):
            assert key in r, (name, key)
        assert [b["batch"] for b in r["batches"]] == [1, 4]
        for b in r["batches"]:
            assert b["runs"] == 30 and b["min_ms"] <= b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"] <= b["max_ms"]
            assert b["throughput_ips"] == pytest.approx(b["batch"] * 1000 / b["mean_ms"])
    assert data["artifacts"]["keras-fp32"]["speedup_vs_keras"] == pytest.approx(1.0)
    # the Keras baseline is the compiled call; predict_on_batch is measured the same way and reported apart
    keras = data["artifacts"]["keras-fp32"]
    assert [b["batch"] for b in keras["predict_on_batch"]] == [1, 4] and keras["predict_on_batch"][0]["runs"] == 30
    assert any("predict_on_batch" in n and "not used for any ratio" in n for n in data["notes"])
    assert all("predict_on_batch" not in r for name, r in data["artifacts"].items() if name != "keras-fp32")
    # import is outside the load clock for every engine: a LiteRT session loads in far less than its import
    assert data["artifacts"]["tflite-fp32"]["import_ms"] > 0 and data["artifacts"]["keras-fp32"]["import_ms"] > 500
    assert data["artifacts"]["tflite-fp32"]["engine"] == "LiteRT (XNNPACK)"
    # each worker's own peak memory (this pytest process holds TensorFlow: hundreds of MB)
    assert data["artifacts"]["tflite-fp32"]["peak_rss_mb"] < data["artifacts"]["keras-fp32"]["peak_rss_mb"] / 2
    assert data["artifacts"]["onnx-fp32"]["engine"] == "onnxruntime (CPUExecutionProvider)"
    assert data["artifacts"]["tflite-fp32"]["speedup_vs_runtime_fp32"] == pytest.approx(1.0)


def _onnx_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.skipif(_onnx_has_cuda(), reason="this machine has onnxruntime's CUDA provider")
def test_gpu_request_without_gpu_is_a_clear_error(tiny_run):
    run = tiny_run
    result = CliRunner().invoke(app, ["bench", str(run), "--device", "gpu"])
    assert result.exit_code == 2 and "--device gpu: onnxruntime has no CUDAExecutionProvider" in result.output


@pytest.mark.skipif(not _onnx_has_cuda(), reason="needs onnxruntime-gpu and an NVIDIA GPU")
def test_bench_on_gpu_uses_the_gpu_providers(tiny_run, tmp_path):
    run = tiny_run
    out = tmp_path / "gpu.json"
    result = CliRunner().invoke(
        app,
        ["bench", str(run), "--device", "gpu", *QUICK, "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["device"]["device"] == "gpu"
    onnx = [r for name, r in data["artifacts"].items() if name.startswith("onnx")]
    assert onnx and all(("CUDA" in r["engine"]) or ("Tensorrt" in r["engine"]) for r in onnx)


def test_report_lists_every_artifact_and_merges_devices(benched, tmp_path):
    run, data = benched
    other = dict(data, device={**data["device"], "board": "Raspberry Pi 5 Model B Rev 1.0", "machine": "aarch64"})
    other_path = tmp_path / "pi5.json"
    other_path.write_text(json.dumps(other))
    (tmp_path / "out" / "figures").mkdir(parents=True)
    (tmp_path / "out" / "figures" / "confusion_earlier-choice.png").write_bytes(b"\x89PNG")
    result = CliRunner().invoke(app, ["report", str(run), str(other_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "out" / "report.md").read_text()
    page = (tmp_path / "out" / "report.html").read_text()
    for name in data["artifacts"]:
        assert f"| {name} |" in md and f"<td class='t'>{name}</td>" in page
    assert "## All devices" in md and "| device | artifact |" in md
    assert md.count("Raspberry Pi 5 Model B Rev 1.0") >= len(data["artifacts"])
    # accuracy is labelled with where it was measured, and never shown in another device's rows
    evaluation = json.loads((run / "reports" / "eval.json").read_text())
    assert f"measured on {evaluation['machine']['cpu']}" in md
    merged = md.split("## All devices")[1].split("##")[0]
    pi_rows = [line for line in merged.splitlines() if line.startswith("| Raspberry Pi 5")]
    own_rows = [
        line
        for line in merged.splitlines()
        if line.startswith("| ") and "Raspberry" not in line and "device" not in line
    ]
    accuracy = "| " + f"{evaluation['artifacts']['keras-fp32']['accuracy']:.2%}" + " |"
    assert len(pi_rows) == len(data["artifacts"]) and all(line.split(" | ")[4] == "-" for line in pi_rows)
    assert any(accuracy in line for line in own_rows)
    assert "accuracy not measured on this device" in md
    # the verdict first: per device the fastest validated artifact, its numbers, and the confusion matrix shown is its
    deployable = {n: r for n, r in data["artifacts"].items() if n != "keras-fp32"}
    fastest = min(deployable, key=lambda n: headline_batch(deployable[n])["p50_ms"])
    verdict = "\n".join(
        line for line in md.split("## Verdict\n")[1].split("\n## ")[0].splitlines() if line.startswith("- ")
    )
    assert md.startswith("# edgeclf report\n\n## Verdict\n") and verdict.count(f"**{fastest}**") == 2  # both devices
    assert "KiB; p50 " in verdict and "the compiled Keras model" in verdict
    assert "not measured on this device" in verdict.strip().splitlines()[-1]  # the Pi row: no accuracy of its own
    assert "test accuracy" in verdict.strip().splitlines()[0]  # this machine's row: measured here
    assert (tmp_path / "out" / "figures" / f"confusion_{fastest}.png").is_file() and "<h2>Verdict</h2>" in page
    assert not (tmp_path / "out" / "figures" / "confusion_earlier-choice.png").exists()  # no stale figure left
    for figure in (
        "accuracy_vs_latency.png",
        "latency_distribution.png",
        "confusion_keras-fp32.png",
        "training_curves.png",
    ):
        assert (tmp_path / "out" / "figures" / figure).is_file() and f"figures/{figure}" in md
    assert page.count("data:image/png;base64,") >= 4 and "src='figures" not in page  # self-contained


def test_report_without_eval_is_a_clear_error(tmp_path, tiny_run):
    import shutil

    run = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("reports"))
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 2 and "run edgeclf evaluate" in result.output


@pytest.mark.parametrize("board, name", [("pi4", "Arm Cortex-A72"), ("pi5", "Arm Cortex-A76")])
def test_fingerprint_names_arm_cores(board, name):
    from edgeclf.runtime.machine import cpu_name, cpuinfo_fields

    text = (Path(__file__).resolve().parents[1] / "tools" / "arm64" / f"cpuinfo_{board}.txt").read_text()
    assert cpu_name(cpuinfo_fields(text)) == name
    assert cpu_name(cpuinfo_fields("model name\t: AMD EPYC 7B13\nflags\t: avx2")) == "AMD EPYC 7B13"


def test_no_deployable_artifact_is_a_verdict_with_its_reason():
    from edgeclf.measure.report import recommend

    bench = {"device": {"cpu": "X", "machine": "x86_64", "threads": 1}, "artifacts": {"keras-fp32": {}}}
    verdict = recommend(bench, None, accuracy_here=False)
    assert verdict.artifact is None and "none passed validation at export" in verdict.sentence


def test_an_int8_file_slower_than_fp32_is_called_out_with_the_measured_crossover():
    from edgeclf.measure.latency import notes, speedups

    def record(fmt, precision, p50):
        return {"format": fmt, "precision": precision, "batches": [{"batch": 1, "p50_ms": p50}]}

    results = {
        "tflite-fp32": record("tflite", "fp32", 1.0),
        "tflite-int8-ptq": record("tflite", "int8-ptq", 1.4),
        "onnx-fp32": record("onnx", "fp32", 2.0),
        "onnx-int8-ptq": record("onnx", "int8-ptq", 1.5),
    }
    speedups(results)
    said = notes(results)
    assert len(said) == 1 and said[0].startswith("tflite-int8-ptq is SLOWER than tflite-fp32 on this CPU (p50 1.400 ms")
    assert "layer widths" in said[0] and "docs/BENCHMARKS.md" in said[0]
    assert "Xeon" not in said[0] and "alpha" not in said[0]  # no other machine's numbers in every user's notes
