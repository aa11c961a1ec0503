"""`edgeclf demo`: the whole pipeline on the embedded Fashion-MNIST subset."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rich.console import Console

from edgeclf.config import load_config, packaged_config
from edgeclf.train import TrainResult, train


def embedded_dataset() -> Path:
    """The class folders of PNGs shipped inside the package (see its PROVENANCE.md and LICENSE)."""
    return Path(str(resources.files("edgeclf") / "datasets" / "fashion_mnist_small"))


def run_demo(out: Path, *, overwrite: bool = False, console: Console | None = None) -> TrainResult:
    console = console or Console(highlight=False)
    cfg = load_config([packaged_config("demo.yaml")])
    console.print(f"[bold]edgeclf demo[/]: {cfg.model.name} alpha {cfg.model.alpha}, {cfg.data.image_size} px, "
                  f"on {embedded_dataset()}")
    result = train(embedded_dataset(), out, cfg, overwrite=overwrite, console=console)
    run = result.run_dir
    console.print(f"\n[bold green]demo finished[/] in {result.seconds:.0f}s; validation accuracy {result.val_accuracy:.4f}")
    for name, what in (("model.keras", "best float model"), ("metadata.json", "input, normalisation, labels, weights source, versions"),
                       ("dataset.json", "every file with its split, label and sha256"), ("history.csv", "per-epoch metrics"),
                       ("curves.png", "training curves"), ("config.yaml", "the resolved configuration")):
        console.print(f"  {run / name}  {what}")
    console.print(f"next: edgeclf train YOUR_FOLDER --out runs/mine  (see edgeclf train --help)")
    return result
