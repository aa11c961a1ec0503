"""What a killed `edgeclf train` leaves to continue from, and the checks before continuing: the
staging folder's progress.json (epoch rows, phases completed, seconds spent; Keras'
BackupAndRestore keeps the weights, optimizer state and epoch counter beside it), the shared
staging folder of a multi-worker cluster, and the interrupted run's data, still where it was."""

from __future__ import annotations

import time
from pathlib import Path

from edgeclf.core.atomic import atomic_write_json
from edgeclf.core.errors import EdgeclfError
from edgeclf.data.dataset import Dataset

PROGRESS = "progress.json"  # in the staging folder while training: what resume_run() continues from
BACKUP = "backup"  # Keras' BackupAndRestore state, per phase


class Progress:
    """What a resumed run needs besides Keras' BackupAndRestore state: the epoch rows so far, the
    phases completed and the seconds spent, in the staging folder's progress.json after each epoch."""

    def __init__(self, state: Path, started: float, recorded: dict | None, writes: bool = True):
        self.state, self.path, self.started, self.writes = state, state / PROGRESS, started, writes
        self.rows: list[dict] = list(recorded["rows"]) if recorded else []
        self.completed: list[str] = list(recorded["completed"]) if recorded else []

    def save(self) -> None:
        if not self.writes:
            return
        seconds = round(time.perf_counter() - self.started, 3)
        atomic_write_json(self.path, {"rows": self.rows, "completed": self.completed, "seconds": seconds})


def shared_stage(out: Path) -> Path:
    """The chief's staging folder on a multi-worker cluster: a name every worker computes, where the
    chief keeps the training state (progress.json, Keras' backup, the best checkpoint, config.yaml,
    dataset.json) and from which every worker resumes. --out must be on a filesystem all workers see."""
    return Path(out).parent / f".{Path(out).name}.partial-cluster"


def resumable_data(data: Dataset, data_dir: Path | str | None) -> Dataset:
    """The interrupted run's data, checked: the one asked for (when given), still there."""
    trained_on = data.pack or str(data.root)
    if data_dir is not None and not same_location(str(data_dir), trained_on):
        raise EdgeclfError(f"--resume: the interrupted run trained on {trained_on}, not {data_dir}")
    if data.pack is not None:
        from edgeclf.data.packed import open_pack

        open_pack(data.pack)  # still there and whole (else a DataError naming it)
    elif not data.root.is_dir():
        raise EdgeclfError(f"--resume: the interrupted run's data folder {data.root} is gone")
    else:  # every image it lists, before TensorFlow's reader meets a missing one mid-epoch (a traceback)
        gone = [r.path for r in data.records if not (data.root / r.path).is_file()]
        if gone:
            raise EdgeclfError(
                f"--resume: {len(gone)} of the {len(data.records)} images the interrupted run uses are gone from "
                f"{data.root} (first: {gone[0]}); put them back, or train again without --resume"
            )
    return data


def same_location(a: str, b: str) -> bool:
    from edgeclf.data.packed import is_remote

    if is_remote(a) or is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()
