"""The training stage: data folder -> run directory with the best float model.

Phase 1 trains the new head on a frozen pretrained backbone (or the whole network when the backbone
starts from random weights); phase 2 fine-tunes the top backbone layers at a low rate. Early
stopping watches the validation loss; the best weights across both phases are checkpointed and
become model.keras. Progress (devices, phases, one line per epoch) is logged to `edgeclf.training.train`.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edgeclf import __version__
from edgeclf.core.atomic import StagedDirectory, atomic_write_json, atomic_write_text, check_apart, check_out_dir
from edgeclf.core.config import Config, load_config
from edgeclf.core.errors import DataError, EdgeclfError
from edgeclf.core.images import PREPROCESSING
from edgeclf.core.run_directory import CONFIG, DATASET, LABELS, METADATA, MODEL
from edgeclf.data.class_weights import class_weights
from edgeclf.data.dataset import Dataset, discover
from edgeclf.training.curves import plot_curves, write_history_csv
from edgeclf.training.weights import WeightsRequest, WeightsSource

log = logging.getLogger(__name__)
PROGRESS = "progress.json"  # in the staging folder while training: what resume_run() continues from
BACKUP = "backup"  # Keras' BackupAndRestore state, per phase


@dataclass
class TrainResult:
    run_dir: Path
    classes: list[str]
    best_epoch: int
    val_accuracy: float
    val_loss: float
    weights_source: str
    seconds: float
    wrote_run: bool = True  # False on a multi-worker cluster's non-chief workers


@dataclass
class Phase:
    name: str  # head | fine_tune
    epochs: int
    learning_rate: float
    trainable_backbone_layers: int = 0
    backbone_layers: int = 0

    def to_json(self) -> dict:
        return {
            "phase": self.name,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "trainable_backbone_layers": self.trainable_backbone_layers,
            "backbone_layers": self.backbone_layers,
        }


@dataclass
class Fitted:
    """What fitting produced: the model (best weights), one row per epoch, the phases run, and
    where it ran."""

    model: object
    rows: list[dict]
    phases: list[Phase]
    weights: WeightsSource
    devices: list[str]
    mixed_precision: bool
    val_loss: float
    val_accuracy: float
    distribution: dict  # strategy, replicas, workers, batch sizes, learning-rate scale, input sharding
    precise_bn_batches: int | None  # None: BatchNorm frozen (pretrained backbone)
    bn_momentum: float | None = None

    @property
    def best(self) -> dict:
        return min((r for r in self.rows if math.isfinite(r["val_loss"])), key=lambda r: r["val_loss"])


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
    progress(done, total) is called as images are checked. Raises RunDirError, WeightsError, DataError."""
    from edgeclf.data.packed import is_remote

    if not is_remote(data_dir):
        check_apart(Path(data_dir), Path(out))
    check_out_dir(out, overwrite)
    WeightsRequest.parse(cfg.model.weights)
    return load_data(data_dir, cfg, progress)


def load_data(data_dir: Path | str, cfg: Config, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """The pack at data_dir opened (its image size must be cfg's), or the data folder checked and split."""
    from edgeclf.data.packed import is_pack, is_remote, open_pack

    if is_pack(data_dir):
        pack = open_pack(data_dir)
        pack.check_size(cfg.data.image_size)
        return pack.dataset
    if is_remote(data_dir):
        raise DataError(f"{data_dir}: no pack.json there; a remote location must hold a pack (edgeclf data pack)")
    return prepare_folder(Path(data_dir), cfg, progress)


def prepare_folder(data_dir: Path, cfg: Config, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """A data folder found, checked and split as cfg says (the split edgeclf train and data pack make)."""
    return discover(Path(data_dir), cfg.data.split, cfg.seed, cfg.data.duplicates, progress=progress)


def train(
    data: Dataset | Path, out: Path, cfg: Config, *, overwrite: bool = False, callbacks: list | None = None
) -> TrainResult:
    """Train as cfg says on data (a Dataset from prepare(), or a data folder) and write the run
    directory `out` (built under a temporary name: a failed run leaves nothing; a killed one leaves
    it with its progress, for resume_run()). callbacks: more Keras callbacks for every phase (a sweep's
    pruning). Raises EdgeclfError subclasses for anything the user can fix."""
    from edgeclf.training.distribute import role, writes_run

    if not writes_run(cfg.train.strategy, role()):
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
        fitted, seconds = _fit(data, cfg, run, started, callbacks=callbacks), time.perf_counter() - started
        _write_results(run, cfg, data, fitted, seconds)
    return _result(out, data, fitted, seconds)


def _train_as_worker(data: Dataset | Path, out: Path, cfg: Config, progress: dict | None = None) -> TrainResult:
    """A non-chief worker of a multi-worker cluster: the same training steps as the chief (every
    collective needs every worker), its files in a temporary folder that is removed; the chief
    writes the run at `out`."""
    import tempfile

    if not isinstance(data, Dataset):
        data = load_data(data, cfg)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeclf-worker-") as tmp:
        fitted = _fit(data, cfg, Path(tmp), started, progress, state=shared_stage(out))
    return _result(out, data, fitted, time.perf_counter() - started, chief=False)


def _on_cluster(cfg: Config) -> bool:
    from edgeclf.training.distribute import role

    return cfg.train.strategy in ("auto", "multiworker") and role().workers > 1


def shared_stage(out: Path) -> Path:
    """The chief's staging folder on a multi-worker cluster: a name every worker computes, where the
    chief keeps the training state (progress.json, Keras' backup, the best checkpoint, config.yaml,
    dataset.json) and from which every worker resumes. --out must be on a filesystem all workers see."""
    return Path(out).parent / f".{Path(out).name}.partial-cluster"


def resume_run(out: Path, data_dir: Path | None = None) -> TrainResult:
    """Continue the `edgeclf train --out OUT` that was killed: its staging folder (left with the
    dead process's PID) is adopted, and training goes on from its last completed epoch with the
    recorded config, split and manifest; the weights, optimizer state and epoch counter come back
    from Keras' BackupAndRestore; the order of later epochs' batches, EarlyStopping's and
    ReduceLROnPlateau's counters start afresh, so the result is close to, not bit-identical with,
    an uninterrupted run. Raises EdgeclfError when there is nothing to resume or the data moved."""
    from edgeclf.training.distribute import role, writes_run

    stage_kept = shared_stage(out)
    if role().workers > 1 and (stage_kept / CONFIG).is_file():
        cfg = load_config([stage_kept / CONFIG])
        if not writes_run(cfg.train.strategy, role()):  # a worker resumes from the chief's shared state
            data = _resumable_data(Dataset.load(stage_kept / DATASET), data_dir)
            progress = json.loads((stage_kept / PROGRESS).read_text(encoding="utf-8"))
            return _train_as_worker(data, out, cfg, progress)
    started = time.perf_counter()
    shared = role().workers > 1 and stage_kept.is_dir()
    with StagedDirectory(Path(out), resume_marker=PROGRESS, adopt=True, shared=shared) as stage:
        run = stage.path
        cfg = load_config([run / CONFIG])
        data = _resumable_data(Dataset.load(run / DATASET), data_dir)
        progress = json.loads((run / PROGRESS).read_text(encoding="utf-8"))
        phases = ", ".join(progress["completed"]) or "no"
        log.info(f"resuming {out} after epoch {len(progress['rows'])} ({phases} phase(s) done)")
        fitted = _fit(data, cfg, run, started - float(progress.get("seconds", 0)), progress)
        seconds = time.perf_counter() - started + float(progress.get("seconds", 0))
        _write_results(run, cfg, data, fitted, seconds)
    return _result(out, data, fitted, seconds)


def _resumable_data(data: Dataset, data_dir: Path | str | None) -> Dataset:
    """The interrupted run's data, checked: the one asked for (when given), still there."""
    trained_on = data.pack or str(data.root)
    if data_dir is not None and not _same_location(str(data_dir), trained_on):
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


def _same_location(a: str, b: str) -> bool:
    from edgeclf.data.packed import is_remote

    if is_remote(a) or is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).resolve() == Path(b).resolve()


def _write_results(run: Path, cfg: Config, data: Dataset, fitted: Fitted, seconds: float) -> None:
    write_history_csv(fitted.rows, run / "history.csv")
    plot_curves(fitted.rows, run / "curves.png", title=f"{cfg.model.name} on {Path(data.pack or data.root).name}")
    atomic_write_json(run / METADATA, _metadata(cfg, data, fitted, seconds))
    (run / PROGRESS).unlink(missing_ok=True)
    shutil.rmtree(run / BACKUP, ignore_errors=True)


def _result(out: Path, data: Dataset, fitted: Fitted, seconds: float, chief: bool = True) -> TrainResult:
    return TrainResult(
        Path(out),
        data.classes,
        int(fitted.best["epoch"]),
        fitted.val_accuracy,
        fitted.val_loss,
        fitted.weights.source,
        seconds,
        chief,
    )


def use_mixed_precision(cfg: Config, gpus: list[str]) -> bool:
    """mixed_float16 only where it is asked for and TensorFlow sees a GPU (a warning otherwise)."""
    if cfg.train.mixed_precision and not gpus:
        log.warning("mixed precision asked for, but TensorFlow sees no GPU: training in float32")
    return cfg.train.mixed_precision and bool(gpus)


def _fit(
    data: Dataset, cfg: Config, run: Path, started: float, progress: dict | None = None, state: Path | None = None,
    callbacks: list | None = None,
) -> Fitted:  # fmt: skip
    """Train into `run`. The training state (progress.json, the best checkpoint, Keras' backup) is
    kept in `state` (default: run); a cluster's non-chief worker passes the chief's shared stage, reads
    it when resuming and never writes it."""
    from edgeclf.training.distribute import place

    placement = place(cfg.train.strategy)  # first: MultiWorkerMirroredStrategy must precede the runtime
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(cfg.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    mixed = use_mixed_precision(cfg, gpus)
    where = ", ".join(gpus) if gpus else "the CPU"
    if placement.name != "none":
        devices, task = ", ".join(placement.devices), placement.role.describe()
        where = f"{placement.replicas} replicas ({placement.name}: {devices}; {task})"
    log.info(f"training on {where}" + (" with mixed precision" if mixed else ""))
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        tracked = Progress(state or run, started, progress, writes=state is None)
        return _fit_phases(data, cfg, run, gpus or ["CPU"], mixed, tracked, placement, callbacks or [])
    finally:
        keras.mixed_precision.set_global_policy("float32")  # later stages in this process build float32 models


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
        atomic_write_json(self.path, {"rows": self.rows, "completed": self.completed,
                                      "seconds": round(time.perf_counter() - self.started, 3)})  # fmt: skip


def _fit_phases(
    data: Dataset, cfg: Config, run: Path, devices: list[str], mixed: bool, progress: Progress, placement,
    callbacks: list,
) -> Fitted:  # fmt: skip
    from edgeclf.training.callbacks import BestWeights, PreciseBatchNorm
    from edgeclf.training.distribute import with_global_batch
    from edgeclf.training.models import build_classifier, save_model

    distribution = _distribution(cfg, placement, data)
    # the pipelines batch globally (Keras splits each batch across the replicas)
    cfg = with_global_batch(cfg, placement.replicas)
    with placement.scope():
        built = build_classifier(cfg.model, len(data.classes), cfg.data.image_size)
    model = built.model
    note = f" ({built.weights.note})" if built.weights.note else ""
    log.info(f"model {model.name}: {model.count_params():,} parameters, weights: {built.weights.source}{note}")

    cache = run / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # a killed run's cache may be half-written: built again
    cache.mkdir()
    train_ds, val_ds = _datasets(data, cfg, cache, distribution["input_sharding"])

    # TensorFlow's checkpoint format (best.index + data): an .h5 file cannot be loaded back into
    # the sync-on-read variables a distribution strategy makes
    checkpoint = progress.state / "checkpoints" / "best"
    if progress.writes:  # (a cluster's other workers keep their copies in Keras' temporaries)
        checkpoint.parent.mkdir(exist_ok=True)
    # BatchNorm trains only with a random backbone (a pretrained one keeps it frozen in both phases)
    precise_bn = [] if built.weights.pretrained else [PreciseBatchNorm(train_ds, cfg.train.precise_bn_batches)]
    rows = progress.rows
    weights = class_weights(cfg.train.class_weights, data.classes, data.counts().get("train", {}))
    if weights:
        log.info("class weights: " + ", ".join(f"{data.classes[i]} {w:.3g}" for i, w in weights.items()))
    keeper = BestWeights(min((r["val_loss"] for r in rows if math.isfinite(r["val_loss"])), default=None))
    phases = [
        Phase("head", cfg.train.epochs, cfg.train.learning_rate * distribution["learning_rate_scale"]),
        Phase(
            "fine_tune",
            cfg.train.fine_tune_epochs,
            cfg.train.fine_tune_learning_rate * distribution["learning_rate_scale"],
        ),
    ]
    phases = [p for p in phases if p.epochs > 0]
    for phase in phases:
        if phase.name in progress.completed:  # resumed: this phase finished before the process was killed
            _set_phase_layers(phase, built, cfg)
            if _saved(checkpoint):
                model.load_weights(str(checkpoint))
            continue
        with placement.scope():
            _run_phase(phase, built, cfg, train_ds, val_ds, checkpoint, progress, [keeper, *precise_bn, *callbacks],
                       weights)  # fmt: skip
        _restore_best(model, keeper, checkpoint)
        progress.completed.append(phase.name)
        progress.save()
    if keeper.weights is None and not _saved(checkpoint):
        raise EdgeclfError(
            "training produced no usable model: the validation loss was never finite; "
            "lower --learning-rate or check the data"
        )
    for layer in model.layers:
        layer.trainable = True
    val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
    save_model(model, run / MODEL)
    shutil.rmtree(cache)
    if progress.writes:
        shutil.rmtree(checkpoint.parent)
    scratch = not built.weights.pretrained
    fitted = Fitted(
        model, rows, phases, built.weights, devices, mixed, float(val_loss), float(val_accuracy), distribution,
        precise_bn_batches=cfg.train.precise_bn_batches if scratch else None,
        bn_momentum=cfg.model.scratch_bn_momentum if scratch else None,
    )  # fmt: skip
    best = fitted.best
    log.info(f"best epoch {best['epoch']} ({best['phase']}): val_loss {val_loss:.4f}, val_accuracy {val_accuracy:.4f}")
    return fitted


def _distribution(cfg: Config, placement, data: Dataset) -> dict:
    """What the run's metadata records about the strategy, as applied (edgeclf.training.distribute)."""
    from edgeclf.training.distribute import batch_sizes, input_sharding

    global_batch, per_replica = batch_sizes(cfg.data.batch_size, cfg.train.batch_size_per, placement.replicas)
    workers = placement.role.workers if placement.name == "multiworker" else 1
    return {
        "strategy": placement.name,
        "asked": cfg.train.strategy,
        "replicas": placement.replicas,
        "workers": workers,
        "devices": placement.devices,
        "batch_size_per": cfg.train.batch_size_per,
        "global_batch_size": global_batch,
        "per_replica_batch_size": per_replica,
        "learning_rate_scaling": cfg.train.learning_rate_scaling,
        "learning_rate_scale": placement.replicas if cfg.train.learning_rate_scaling == "linear" else 1,
        "input_sharding": input_sharding(data, workers),
    }


def _datasets(data: Dataset, cfg: Config, cache: Path, sharding: dict[str, str]):
    """(training, validation) tf.data pipelines (edgeclf.data.pipeline.input_datasets), divided across
    workers by file or by data (only a multi-worker strategy divides them)."""
    from edgeclf.data.pipeline import build_augmenter, input_datasets
    from edgeclf.training.distribute import sharded

    return sharded(input_datasets(data, cfg.data, cfg.seed, build_augmenter(cfg.augment, cfg.seed), cache), sharding)


def _set_phase_layers(phase: Phase, built, cfg: Config) -> None:
    from edgeclf.training.models import set_trainable

    phase.trainable_backbone_layers = set_trainable(built, phase.name, cfg.train.fine_tune_layers)
    phase.backbone_layers = len(built.backbone_layers)


def _class_weights_record(cfg: Config, data: Dataset) -> dict | None:
    """{class name: weight} as applied (None: unweighted)."""
    weights = class_weights(cfg.train.class_weights, data.classes, data.counts().get("train", {}))
    return None if weights is None else {data.classes[i]: round(w, 6) for i, w in weights.items()}


def _saved(checkpoint: Path) -> bool:
    return checkpoint.with_name(checkpoint.name + ".index").exists()


def _run_phase(
    phase: Phase, built, cfg: Config, train_ds, val_ds, checkpoint: Path, progress, extra: list, class_weight=None
) -> None:
    """Compile at the phase's rate and fit; the epochs continue the numbering of earlier phases, and
    the checkpoint keeps the best weights over all of them (the next phase starts from those).
    Each epoch's row is saved in progress.json, then Keras' BackupAndRestore saves the training
    state, then the epoch's line is logged: a logged epoch is a saved one. A resumed phase continues
    from the saved state (an epoch whose row was saved but not its state runs again)."""
    import tf_keras as keras

    from edgeclf.training.callbacks import EpochLog

    rows = progress.rows
    _set_phase_layers(phase, built, cfg)
    log.info(
        f"phase {phase.name}: {phase.epochs} epoch(s) at learning rate {phase.learning_rate:g}, "
        f"{phase.trainable_backbone_layers} of {phase.backbone_layers} backbone layers trainable"
    )
    model = built.model
    model.compile(
        optimizer=keras.optimizers.Adam(phase.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
        metrics=["accuracy"],
    )
    best_so_far = min((r["val_loss"] for r in rows if math.isfinite(r["val_loss"])), default=None)
    total = cfg.train.epochs + cfg.train.fine_tune_epochs
    t = cfg.train
    done = len([r for r in rows if r["phase"] != phase.name])  # epochs of the earlier phases
    epoch_log = EpochLog(rows, phase.name, total, on_row=lambda _rows: progress.save(), announce=False)
    callbacks = [
        epoch_log,
        keras.callbacks.ModelCheckpoint(
            str(checkpoint), monitor="val_loss", save_best_only=True, save_weights_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.early_stopping_patience),
    ]  # fmt: skip
    if t.schedule == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(cosine(phase, done, t.min_learning_rate)))
    else:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=t.reduce_lr_factor, patience=t.reduce_lr_patience, min_lr=t.min_learning_rate
        ))  # fmt: skip
    backup = keras.callbacks.BackupAndRestore(str(checkpoint.parent.parent / BACKUP / phase.name))
    model.fit(train_ds, validation_data=val_ds, initial_epoch=done, epochs=done + phase.epochs, verbose=0,
              callbacks=callbacks + extra + [backup, epoch_log.announcer()], class_weight=class_weight)  # fmt: skip


def _restore_best(model, best, checkpoint: Path) -> None:
    """Back to the best weights so far: held in memory (every worker), else (a resumed run whose best
    epoch came before the kill) from the checkpoint file."""
    if best.weights is not None:
        model.set_weights(best.weights)
    elif _saved(checkpoint):
        model.load_weights(str(checkpoint))


def cosine(phase: Phase, first_epoch: int, floor: float) -> Callable[[int, float], float]:
    """The per-epoch learning rate of a cosine decay over the phase: the phase's rate at its first
    epoch, falling towards `floor` (reached after its last epoch)."""

    def rate(epoch: int, _current: float) -> float:
        progress = (epoch - first_epoch) / phase.epochs
        return floor + (phase.learning_rate - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return rate


def _metadata(cfg: Config, data: Dataset, fitted: Fitted, seconds: float) -> dict:
    """metadata.json: what the model takes and gives, how it was made, and with which versions."""
    import numpy as np
    import PIL
    import tensorflow as tf
    import tf_keras as keras

    from edgeclf.training.models import NORMALIZATION

    model = fitted.model
    size = cfg.data.image_size
    best = fitted.best
    return {
        "edgeclf_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "classes": data.classes,
        "model": {
            "file": MODEL,
            "name": cfg.model.name,
            "alpha": cfg.model.alpha,
            "parameters": int(model.count_params()),
            "input": {
                "name": model.input_names[0],
                "shape": [None, size, size, 3],
                "dtype": "float32",
                "layout": "NHWC",
                "range": [0, 255],
            },
            "output": {"name": model.output_names[0], "shape": [None, len(data.classes)], "activation": "softmax"},
        },
        "preprocessing": {**PREPROCESSING, "size": [size, size]},
        "normalization": {**NORMALIZATION, "applied_in": "model"},
        "weights": fitted.weights.to_json(),
        "batchnorm_momentum": fitted.bn_momentum,
        "batchnorm_precise_batches": fitted.precise_bn_batches,
        "training": {
            "phases": [p.to_json() for p in fitted.phases],
            "epochs_run": len(fitted.rows),
            "best_epoch": int(best["epoch"]),
            "best_phase": best["phase"],
            "val_loss": fitted.val_loss,
            "val_accuracy": fitted.val_accuracy,
            "seconds": round(seconds, 1),
            "seed": cfg.seed,
            "deterministic": cfg.train.deterministic,
            "devices": fitted.devices,
            "mixed_precision": fitted.mixed_precision,
            "distribution": fitted.distribution,
            "class_weights": _class_weights_record(cfg, data),
        },
        "dataset": {
            "layout": data.layout,
            "counts": {s: sum(c.values()) for s, c in data.counts().items()},
            "skipped": len(data.skipped),
            "ignored": len(data.ignored),
        },
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "platform": platform.platform(),
        },
    }
