"""`edgeclf demo`: the whole pipeline on the embedded Fashion-MNIST subset."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console

from edgeclf.bench import BenchOptions, run_bench
from edgeclf.config import load_config, packaged_config
from edgeclf.evaluate import evaluate_run
from edgeclf.export import ExportResult, export_run
from edgeclf.qat import UNSUPPORTED, QatResult, run_qat
from edgeclf.report import build_report
from edgeclf.train import TrainResult, train


def embedded_dataset() -> Path:
    """The class folders of PNGs shipped inside the package (see its PROVENANCE.md and LICENSE)."""
    return Path(str(resources.files("edgeclf") / "datasets" / "fashion_mnist_small"))


@dataclass
class DemoResult:
    train: TrainResult
    qat: QatResult | None
    export: ExportResult
    evaluation: Path
    bench: Path
    report: Path


def run_demo(out: Path, *, overwrite: bool = False, console: Console | None = None) -> DemoResult:
    console = console or Console(highlight=False)
    cfg = load_config([packaged_config("demo.yaml")])
    console.print(
        f"[bold]edgeclf demo[/]: {cfg.model.name} alpha {cfg.model.alpha}, {cfg.data.image_size} px, "
        f"on {embedded_dataset()}"
    )
    started = time.perf_counter()
    trained = train(embedded_dataset(), out, cfg, overwrite=overwrite, console=console)
    run = trained.run_dir
    qat = None
    if cfg.model.name not in UNSUPPORTED:  # MobileNetV3: PTQ only
        console.rule("quantization-aware training")
        qat = run_qat(run, console=console)
    console.rule("export")
    exported = export_run(run, int8=True, console=console)
    console.rule("evaluate")
    evaluated = evaluate_run(run, "test", console=console)
    console.rule("bench")
    bench = run_bench(
        run,
        BenchOptions(threads=os.cpu_count() or 1, warmup=20, runs=200, seconds=None, batch_sizes=(1, 8)),
        console=console,
    )
    report = build_report(run)
    console.print(
        f"\n[bold green]demo finished[/] in {time.perf_counter() - started:.0f}s; "
        f"validation accuracy {trained.val_accuracy:.4f}"
    )
    for name, what in (
        ("model.keras", "best float model"),
        ("qat_model.h5", "quantization-aware model"),
        ("export/artifacts.json", "every artifact: file, precision, I/O quantization, validation"),
        ("reports/eval.json", "test-set metrics of every artifact"),
        ("reports/bench.json", "latency and memory"),
        ("metadata.json", "input, normalisation, labels, weights source, versions"),
        ("dataset.json", "every file with its split, label and sha256"),
        ("history.csv", "per-epoch metrics"),
        ("curves.png", "training curves"),
        ("config.yaml", "the resolved configuration"),
    ):
        if (run / name).exists():
            console.print(f"  {run / name}  {what}")
    console.print(f"next: edgeclf predict {run} some_image.png   |   edgeclf train YOUR_FOLDER --out runs/mine")
    console.print(f"report: {report.html}  (and {report.markdown.name})")
    return DemoResult(trained, qat, exported, evaluated.path, bench, report.html)
