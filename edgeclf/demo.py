"""`edgeclf demo`: the whole pipeline on the embedded Fashion-MNIST subset (configs/demo.yaml)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from edgeclf.core.config import load_config, packaged_config
from edgeclf.export.stage import ExportResult, export_run
from edgeclf.measure.bench import BenchResult, run_bench
from edgeclf.measure.evaluate import EvalResult, evaluate_run
from edgeclf.measure.report import ReportResult, build_report
from edgeclf.training.qat import QatResult, run_qat
from edgeclf.training.train import TrainResult, prepare, train

log = logging.getLogger(__name__)

# What the demo leaves in the run directory, for the closing summary.
RUN_FILES = {
    "model.keras": "best float model",
    "qat_model.h5": "quantization-aware model",
    "export/artifacts.json": "every artifact: file, precision, I/O quantization, validation",
    "reports/eval.json": "test-set metrics of every artifact",
    "reports/bench.json": "latency and memory",
    "metadata.json": "input, normalisation, labels, weights source, versions",
    "dataset.json": "every file with its split, label and sha256",
    "history.csv": "per-epoch metrics",
    "curves.png": "training curves",
    "config.yaml": "the resolved configuration",
}


def embedded_dataset() -> Path:
    """The class folders of PNGs shipped inside the package (see its PROVENANCE.md and LICENSE)."""
    return Path(str(resources.files("edgeclf") / "datasets" / "fashion_mnist_small"))


@dataclass
class DemoResult:
    train: TrainResult
    qat: QatResult | None
    export: ExportResult
    evaluation: EvalResult
    bench: BenchResult
    report: ReportResult
    seconds: float


def run_demo(
    out: Path, *, overwrite: bool = False, on_stage: Callable[[str, object], None] | None = None
) -> DemoResult:
    """train, qat (where tfmot supports the model), export --int8, evaluate, bench and report on the
    embedded dataset with configs/demo.yaml. on_stage(name, None) is called as each stage starts and
    on_stage(name, result) as it ends (name: data, train, qat, export, evaluate, bench, report; the
    data stage's result is the Dataset)."""

    def stage(name: str, fn, *args, **kwargs):
        if on_stage:
            on_stage(name, None)
        result = fn(*args, **kwargs)
        if on_stage:
            on_stage(name, result)
        return result

    cfg = load_config([packaged_config("demo.yaml")])
    log.info(
        f"edgeclf demo: {cfg.model.name} alpha {cfg.model.alpha}, {cfg.data.image_size} px, on {embedded_dataset()}"
    )
    started = time.perf_counter()
    data = stage("data", prepare, embedded_dataset(), out, cfg, overwrite=overwrite)
    trained = stage("train", train, data, out, cfg, overwrite=overwrite)
    run = trained.run_dir
    qat = stage("qat", run_qat, run)
    exported = stage("export", export_run, run, int8=True)
    evaluated = stage("evaluate", evaluate_run, run, "test")
    bench = stage("bench", run_bench, run, cfg.bench)
    report = stage("report", build_report, run)
    return DemoResult(trained, qat, exported, evaluated, bench, report, time.perf_counter() - started)
