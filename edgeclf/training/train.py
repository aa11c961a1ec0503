"""The training stage: data folder (or pack) -> run directory with the best float model.

`train` checks, stages and writes the run (config.yaml, dataset.json, labels.txt, then model.keras,
history.csv, curves.png and metadata.json); `resume_run` adopts a killed run's staging folder and
continues it. The fit loop is edgeclf.training.fit, the state a resumed run needs
edgeclf.training.resume, metadata.json edgeclf.training.metadata; the data folder is found, checked
and split by edgeclf.data.prepare. Whether this process writes the run (not a multi-worker cluster's
other workers) is decided here, once. Progress (devices, phases, one line per epoch) is logged to
`edgeclf.training.train`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.atomic import StagedDirectory, atomic_write_json, atomic_write_text, check_apart, check_out_dir
from edgeclf.core.config import Config, load_config
from edgeclf.core.run_directory import CONFIG, DATASET, LABELS, METADATA
from edgeclf.data.dataset import Dataset
from edgeclf.data.prepare import load_data
from edgeclf.training.curves import plot_curves, write_history_csv
from edgeclf.training.fit import Fitted, fit
from edgeclf.training.metadata import run_metadata
from edgeclf.training.resume import BACKUP, PROGRESS, resumable_data, shared_stage
from edgeclf.training.weights import WeightsRequest

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    classes: list[str]
    best_epoch: int
    val_accuracy: float
    val_loss: float
    weights_source: str
    seconds: float
    wrote_run: bool = True  # False on a multi-worker cluster's non-chief workers ...
    task: str = ""  # ... and which task this process was ("worker 1 of 2 task(s)")
    timings: dict[str, float] | None = None  # seconds per step of the fit (metadata.json training.timings)


def prepare(
    data_dir: Path | str,
    out: Path,
    cfg: Config,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """The cheap checks first (--out, --weights), then the data folder found, checked and split, or
    the pack (edgeclf data pack; any filesystem TensorFlow reads) opened, its split taken as packed.
    A multi-worker cluster's other workers leave --out to the chief (it checks and writes it).
    progress(done, total) is called as images are checked. Raises RunDirError, WeightsError, DataError."""
    from edgeclf.data.packed import is_remote

    if not writes_run(cfg):
        return load_data(data_dir, cfg, progress)
    if not is_remote(data_dir):
        check_apart(Path(data_dir), Path(out))
    check_out_dir(out, overwrite)
    WeightsRequest.parse(cfg.model.weights)
    return load_data(data_dir, cfg, progress)


def train(
    data: Dataset | Path, out: Path, cfg: Config, *, overwrite: bool = False, callbacks: list | None = None
) -> TrainResult:
    """Train as cfg says on data (a Dataset from prepare(), or a data folder) and write the run
    directory `out` (built under a temporary name: a failed run leaves nothing; a killed one leaves
    it with its progress, for resume_run()). callbacks: more Keras callbacks for every phase (a sweep's
    pruning). Raises EdgeclfError subclasses for anything the user can fix."""
    if not writes_run(cfg):
        return _train_as_worker(data, out, cfg)
    if isinstance(data, Dataset):
        check_out_dir(out, overwrite)  # prepare() checked it for a folder
        if data.pack is None:
            check_apart(data.root, Path(out))
    else:
        data = prepare(data, out, cfg, overwrite=overwrite)
    started = time.perf_counter()
    with StagedDirectory(Path(out), resume_marker=PROGRESS, shared=_on_cluster(cfg)) as stage:
        run = stage.path
        atomic_write_text(run / CONFIG, cfg.to_yaml())
        atomic_write_json(run / DATASET, data.to_json())
        atomic_write_text(run / LABELS, "\n".join(data.classes) + "\n")
        fitted, seconds = fit(data, cfg, run, started, callbacks=callbacks), time.perf_counter() - started
        _write_results(run, cfg, data, fitted, seconds)
    return _result(out, data, fitted, seconds)


def _train_as_worker(data: Dataset | Path, out: Path, cfg: Config, progress: dict | None = None) -> TrainResult:
    """A non-chief worker of a multi-worker cluster: the same training steps as the chief (every
    collective needs every worker), its files in a temporary folder that is removed; the chief
    writes the run at `out`."""
    import tempfile

    from edgeclf.training.distribute import role

    if not isinstance(data, Dataset):
        data = load_data(data, cfg)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeclf-worker-") as tmp:
        fitted = fit(data, cfg, Path(tmp), started, progress, state=shared_stage(out))
    return _result(out, data, fitted, time.perf_counter() - started, task=role().describe())


def writes_run(cfg: Config) -> bool:
    """Whether this process writes the run directory (edgeclf.training.distribute.writes_run): the one
    place the train stage decides it (prepare, train and resume_run ask here)."""
    from edgeclf.training.distribute import role
    from edgeclf.training.distribute import writes_run as decides

    return decides(cfg.train.strategy, role())


def _on_cluster(cfg: Config) -> bool:
    from edgeclf.training.distribute import role

    return cfg.train.strategy in ("auto", "multiworker") and role().workers > 1


def resume_run(out: Path, data_dir: Path | None = None) -> TrainResult:
    """Continue the `edgeclf train --out OUT` that was killed: its staging folder (left with the
    dead process's PID) is adopted, and training goes on from its last completed epoch with the
    recorded config, split and manifest; the weights, optimizer state and epoch counter come back
    from Keras' BackupAndRestore; the order of later epochs' batches, EarlyStopping's and
    ReduceLROnPlateau's counters start afresh, so the result is close to, not bit-identical with,
    an uninterrupted run. Raises EdgeclfError when there is nothing to resume or the data moved."""
    from edgeclf.training.distribute import role

    stage_kept = shared_stage(out)
    if role().workers > 1 and (stage_kept / CONFIG).is_file():
        cfg = load_config([stage_kept / CONFIG])
        if not writes_run(cfg):  # a worker resumes from the chief's shared state
            data = resumable_data(Dataset.load(stage_kept / DATASET), data_dir)
            progress = json.loads((stage_kept / PROGRESS).read_text(encoding="utf-8"))
            return _train_as_worker(data, out, cfg, progress)
    started = time.perf_counter()
    shared = role().workers > 1 and stage_kept.is_dir()
    with StagedDirectory(Path(out), resume_marker=PROGRESS, adopt=True, shared=shared) as stage:
        run = stage.path
        cfg = load_config([run / CONFIG])
        data = resumable_data(Dataset.load(run / DATASET), data_dir)
        progress = json.loads((run / PROGRESS).read_text(encoding="utf-8"))
        phases = ", ".join(progress["completed"]) or "no"
        log.info(f"resuming {out} after epoch {len(progress['rows'])} ({phases} phase(s) done)")
        fitted = fit(data, cfg, run, started - float(progress.get("seconds", 0)), progress)
        seconds = time.perf_counter() - started + float(progress.get("seconds", 0))
        _write_results(run, cfg, data, fitted, seconds)
    return _result(out, data, fitted, seconds)


def _write_results(run: Path, cfg: Config, data: Dataset, fitted: Fitted, seconds: float) -> None:
    write_history_csv(fitted.rows, run / "history.csv")
    plot_curves(fitted.rows, run / "curves.png", title=f"{cfg.model.name} on {Path(data.pack or data.root).name}")
    atomic_write_json(run / METADATA, run_metadata(cfg, data, fitted, seconds))
    (run / PROGRESS).unlink(missing_ok=True)
    shutil.rmtree(run / BACKUP, ignore_errors=True)


def _result(out: Path, data: Dataset, fitted: Fitted, seconds: float, task: str = "") -> TrainResult:
    """The stage's result; `task` is a non-chief worker's (which wrote no run)."""
    return TrainResult(
        Path(out),
        data.classes,
        int(fitted.best["epoch"]),
        fitted.val_accuracy,
        fitted.val_loss,
        fitted.weights.source,
        seconds,
        wrote_run=not task,
        task=task,
        timings=fitted.timings,
    )
