"""export/MODEL_CARD.md (edgeclf.export.model_card): written from the run's records, with the test
accuracy, latency and known limits once evaluate and bench have run."""

import json
import shutil

from edgeclf.core.run_directory import Run
from edgeclf.export.model_card import write_model_card
from tests.conftest import CLASSES


def _card(run) -> str:
    return write_model_card(Run.open(run)).read_text()


def test_the_card_after_export_says_what_the_model_is_for_and_what_is_missing(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    card = _card(run)
    assert card.startswith("# Model card: run\n") and ", ".join(CLASSES) in card
    assert "resized to 32 x 32 (bilinear" in card and "small_cnn (alpha 0.25)" in card
    assert "| bag | 42 | 9 | 9 |" in card and "| all | 126 | 27 | 27 |" in card
    entries = json.loads((run / "export" / "artifacts.json").read_text())["artifacts"]
    for entry in entries:
        row = next(line for line in card.splitlines() if line.startswith(f"| {entry['name']} |"))
        assert f"{entry['validation']['accuracy']:.2%}" in row
    assert f"edgeclf bench {run}" in card and f"edgeclf evaluate {run}" in card
    assert "27 images: one image is 3.70 points" in card


def test_the_card_after_evaluate_and_bench_names_latency_low_recall_and_int8_flips(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    reports = run / "reports"
    reports.mkdir()
    recall = {"bag": 1.0, "sneaker": 0.6, "trouser": 1.0}
    evaluation = {
        "split": "test",
        "images": 27,
        "artifacts": {
            "keras-fp32": {"per_class": {c: {"recall": r} for c, r in recall.items()}, "images": 27},
            "tflite-int8-ptq": {"accuracy": 0.9259, "agreement_with_float": 25 / 27, "images": 27},
        },
    }
    bench = {
        "device": {"cpu": "Test CPU", "cores": 2, "threads": 2},
        "artifacts": {"tflite-int8-ptq": {"batches": [{"batch": 1, "p50_ms": 0.123}], "speedup_vs_runtime_fp32": 1.9}},
    }
    (reports / "eval.json").write_text(json.dumps(evaluation))
    (reports / "bench.json").write_text(json.dumps(bench))
    card = _card(run)
    assert "On Test CPU (2 cores, 2 threads)" in card and "| tflite-int8-ptq | 0.123 | 1.90 |" in card
    assert "recall on test): sneaker (60%)" in card and "bag (" not in card.split("recall on test")[1].split("\n")[0]
    assert "- tflite-int8-ptq answers 2 of 27 test images differently from the float model." in card
    row = next(line for line in card.splitlines() if line.startswith("| tflite-int8-ptq |"))
    assert row.endswith("| 92.59% |")
