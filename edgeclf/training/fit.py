"""The fit loop: the model built under the placement's strategy, phase 1 (the new head on a frozen
pretrained backbone, or the whole network from random weights) and phase 2 (the top backbone
layers fine-tuned at a low rate), early stopping on the validation loss, the best weights kept
across both phases. The training state a resumed run continues from is edgeclf.training.resume's."""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.config import Config
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.run_directory import MODEL
from edgeclf.core.timings import Timings
from edgeclf.data.class_weights import class_weights
from edgeclf.data.dataset import Dataset
from edgeclf.training.resume import BACKUP, Progress
from edgeclf.training.weights import WeightsSource

log = logging.getLogger("edgeclf.training.train")  # the stage's messages, one logger


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
    timings: dict[str, float] | None = None  # seconds per step of this process's fit

    @property
    def best(self) -> dict:
        return min((r for r in self.rows if math.isfinite(r["val_loss"])), key=lambda r: r["val_loss"])


def use_mixed_precision(cfg: Config, gpus: list[str]) -> bool:
    """mixed_float16 only where it is asked for and TensorFlow sees a GPU (a warning otherwise)."""
    if cfg.train.mixed_precision and not gpus:
        log.warning("mixed precision asked for, but TensorFlow sees no GPU: training in float32")
    return cfg.train.mixed_precision and bool(gpus)


def fit(
    data: Dataset,
    cfg: Config,
    run: Path,
    started: float,
    progress: dict | None = None,
    state: Path | None = None,
    callbacks: list | None = None,
) -> Fitted:
    """Train into `run`. The training state (progress.json, the best checkpoint, Keras' backup) is
    kept in `state` (default: run); a cluster's non-chief worker passes the chief's shared stage, reads
    it when resuming and never writes it."""
    from edgeclf.training.distribute import place

    placement = place(cfg.train.strategy)  # first: MultiWorkerMirroredStrategy must precede the runtime
    import tensorflow as tf
    import tf_keras as keras

    seed_training(cfg)
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


def _fit_phases(
    data: Dataset,
    cfg: Config,
    run: Path,
    devices: list[str],
    mixed: bool,
    progress: Progress,
    placement,
    callbacks: list,
) -> Fitted:
    from edgeclf.training.callbacks import PreciseBatchNorm
    from edgeclf.training.distribute import with_global_batch
    from edgeclf.training.models import save_model

    distribution = _distribution(cfg, placement, data)
    # the pipelines batch globally (Keras splits each batch across the replicas)
    cfg = with_global_batch(cfg, placement.replicas)
    timings = Timings()
    with timings.step("build the model"):
        built = _build(cfg, placement, len(data.classes))
    model = built.model
    cache = run / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # a killed run's cache may be half-written: built again
    cache.mkdir()
    with timings.step("input pipelines"):
        train_ds, val_ds = _datasets(data, cfg, cache, distribution["input_sharding"])

    # TensorFlow's checkpoint format (best.index + data): an .h5 file cannot be loaded back into
    # the sync-on-read variables a distribution strategy makes
    checkpoint = progress.state / "checkpoints" / "best"
    if progress.writes:  # (a cluster's other workers keep their copies in Keras' temporaries)
        checkpoint.parent.mkdir(exist_ok=True)
    # BatchNorm trains only with a random backbone (a pretrained one keeps it frozen in both phases)
    precise_bn = [] if built.weights.pretrained else [PreciseBatchNorm(train_ds, cfg.train.precise_bn_batches)]
    weights = class_weights(cfg.train.class_weights, data.classes, data.counts().get("train", {}))
    if weights:
        log.info("class weights: " + ", ".join(f"{data.classes[i]} {w:.3g}" for i, w in weights.items()))
    phases = _phases(cfg, distribution["learning_rate_scale"])
    fit_data = (train_ds, val_ds, weights)
    logs = [tensorboard(run / LOGS / "train", cfg)] if cfg.train.tensorboard else []  # a worker's run is temporary
    _train_phases(
        phases, built, cfg, fit_data, checkpoint, progress, placement, [*precise_bn, *callbacks, *logs], timings
    )
    for layer in model.layers:
        layer.trainable = True
    with timings.step("final validation and model.keras"):
        val_loss, val_accuracy = model.evaluate(val_ds, verbose=0)
        save_model(model, run / MODEL)
    shutil.rmtree(cache)
    if progress.writes:
        shutil.rmtree(checkpoint.parent)
    scratch = not built.weights.pretrained
    fitted = Fitted(
        model,
        progress.rows,
        phases,
        built.weights,
        devices,
        mixed,
        float(val_loss),
        float(val_accuracy),
        distribution,
        precise_bn_batches=cfg.train.precise_bn_batches if scratch else None,
        bn_momentum=cfg.model.scratch_bn_momentum if scratch else None,
        timings=timings.to_json(),
    )
    best = fitted.best
    log.info(f"best epoch {best['epoch']} ({best['phase']}): val_loss {val_loss:.4f}, val_accuracy {val_accuracy:.4f}")
    return fitted


def _train_phases(
    phases: list[Phase],
    built,
    cfg: Config,
    fit_data: tuple,
    checkpoint: Path,
    progress: Progress,
    placement,
    callbacks: list,
    timings: Timings,
) -> None:
    """Run each phase not completed before (a resumed run skips those, restoring their best weights),
    the best weights across phases kept in memory and in the checkpoint. fit_data: (training
    pipeline, validation pipeline, class weights). Raises EdgeclfError when no epoch gave a finite
    validation loss."""
    from edgeclf.training.callbacks import BestWeights

    model = built.model
    traced_for: list = []  # the variables the compiled training step trains (restart_training_state)
    keeper = BestWeights(min((r["val_loss"] for r in progress.rows if math.isfinite(r["val_loss"])), default=None))
    for phase in phases:
        if phase.name in progress.completed:  # resumed: this phase finished before the process was killed
            _set_phase_layers(phase, built, cfg)
            if _saved(checkpoint):
                model.load_weights(str(checkpoint))
            continue
        with placement.scope(), timings.step(f"phase {phase.name} ({phase.epochs} epochs)"):
            _run_phase(phase, built, cfg, fit_data, checkpoint, progress, [keeper, *callbacks], traced_for)
        _restore_best(model, keeper, checkpoint)
        progress.completed.append(phase.name)
        progress.save()
    if keeper.weights is None and not _saved(checkpoint):
        raise EdgeclfError(
            "training produced no usable model: the validation loss was never finite; "
            "lower --learning-rate or check the data"
        )


def _build(cfg: Config, placement, classes: int):
    from edgeclf.training.models import build_classifier

    with placement.scope():
        built = build_classifier(cfg.model, classes, cfg.data.image_size)
    model = built.model
    note = f" ({built.weights.note})" if built.weights.note else ""
    log.info(f"model {model.name}: {model.count_params():,} parameters, weights: {built.weights.source}{note}")
    return built


def _phases(cfg: Config, learning_rate_scale: float) -> list[Phase]:
    """The phases with epochs to run: the head, then the fine-tuning (learning rates scaled for the
    replicas when train.learning_rate_scaling is linear)."""
    phases = [
        Phase("head", cfg.train.epochs, cfg.train.learning_rate * learning_rate_scale),
        Phase("fine_tune", cfg.train.fine_tune_epochs, cfg.train.fine_tune_learning_rate * learning_rate_scale),
    ]
    return [p for p in phases if p.epochs > 0]


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


def _saved(checkpoint: Path) -> bool:
    return checkpoint.with_name(checkpoint.name + ".index").exists()


def _run_phase(
    phase: Phase,
    built,
    cfg: Config,
    fit_data: tuple,
    checkpoint: Path,
    progress,
    extra: list,
    traced_for: list,
) -> None:
    """Compile at the phase's rate (or restart the compiled step: restart_training_state) and fit;
    the epochs continue the numbering of earlier phases, and the checkpoint keeps the best weights
    over all of them (the next phase starts from those).
    Each epoch's row is saved in progress.json, then Keras' BackupAndRestore saves the training
    state, then the epoch's line is logged: a logged epoch is a saved one. A resumed phase continues
    from the saved state (an epoch whose row was saved but not its state runs again)."""
    import tf_keras as keras

    from edgeclf.training.callbacks import EpochLog

    train_ds, val_ds, class_weight = fit_data
    rows = progress.rows
    _set_phase_layers(phase, built, cfg)
    log.info(
        f"phase {phase.name}: {phase.epochs} epoch(s) at learning rate {phase.learning_rate:g}, "
        f"{phase.trainable_backbone_layers} of {phase.backbone_layers} backbone layers trainable"
    )
    model = built.model
    if not restart_training_state(model, phase.learning_rate, traced_for):
        model.compile(
            optimizer=keras.optimizers.Adam(phase.learning_rate),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
            metrics=["accuracy"],
        )
        build_training_state(model)
    best_so_far = min((r["val_loss"] for r in rows if math.isfinite(r["val_loss"])), default=None)
    total = cfg.train.epochs + cfg.train.fine_tune_epochs
    t = cfg.train
    done = len([r for r in rows if r["phase"] != phase.name])  # epochs of the earlier phases
    epoch_log = EpochLog(rows, phase.name, total, on_row=lambda _rows: progress.save(), announce=False)
    best_checkpoint = keras.callbacks.ModelCheckpoint(
        str(checkpoint),
        monitor="val_loss",
        save_best_only=True,
        save_weights_only=True,
        initial_value_threshold=best_so_far,
    )
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=t.early_stopping_patience)
    if t.schedule == "cosine":
        schedule = keras.callbacks.LearningRateScheduler(cosine(phase, done, t.min_learning_rate))
    else:
        schedule = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=t.reduce_lr_factor, patience=t.reduce_lr_patience, min_lr=t.min_learning_rate
        )
    backup = keras.callbacks.BackupAndRestore(str(checkpoint.parent.parent / BACKUP / phase.name))
    model.fit(
        train_ds,
        validation_data=val_ds,
        initial_epoch=done,
        epochs=done + phase.epochs,
        verbose=0,
        callbacks=[epoch_log, best_checkpoint, stopping, schedule, *extra, backup, epoch_log.announcer()],
        class_weight=class_weight,
    )


LOGS = "logs"  # RUN/logs/train and RUN/logs/qat: TensorBoard's event files


def tensorboard(log_dir: Path, cfg: Config):
    """Keras' TensorBoard callback: the epoch scalars (loss, accuracy, their validation values and
    the learning rate, which EpochLog puts in the epoch's logs), histograms every
    train.tensorboard_histograms epochs, no graph, no profiling."""
    import tf_keras as keras

    return keras.callbacks.TensorBoard(
        str(log_dir),
        histogram_freq=cfg.train.tensorboard_histograms,
        write_graph=False,
        update_freq="epoch",
        profile_batch=0,
    )


def seed_training(cfg: Config) -> None:
    """The run's seed for Python, NumPy and TensorFlow, and TensorFlow's deterministic ops when
    train.deterministic is on (train and QAT alike: the same run gives the same model)."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(cfg.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()


def build_training_state(model) -> None:
    """Create the variables that the first training step would create (the optimizer's slots and
    step counter, the compiled loss and metrics) before fit, in the current strategy scope: a
    tf.function whose first call creates variables is traced twice (once creating them, once
    without), and a MobileNet's training step costs 6-12 s to trace on 2 cores. Measured on the
    small folder (MobileNetV2 0.35 / 64 px, plain model.fit): first epoch 14.6 -> 7.5 s per phase."""
    import tensorflow as tf

    model.optimizer.build(model.trainable_variables)
    outputs = tf.zeros([1, *model.output_shape[1:]], model.output.dtype)
    model.compiled_loss.build(outputs)
    model.compiled_metrics.build(outputs, outputs)


def restart_training_state(model, learning_rate: float, traced_for: list) -> bool:
    """Start a phase on the model's compiled training step when the phase trains the same variables
    as the step was traced for (a random backbone trains every layer in both phases): the optimizer
    restarted as a new Adam would start (step counter and moments zero) at the phase's rate, so fit
    keeps its traced training and validation steps instead of tracing both again (a recompile drops
    them; about 12 s per phase for the small folder's MobileNetV2 on 2 cores). `traced_for` is the
    caller's record of those variables, updated here. Under mixed precision the loss scale is not
    restarted (a new compile starts it again at its initial value): it keeps what phase 1 adapted it
    to. False, touching nothing else, when the model has no traced step or trains other variables:
    the caller compiles."""
    import tensorflow as tf

    trainable = [v.ref() for v in model.trainable_variables]
    if model.train_function is None or traced_for != trainable:
        traced_for[:] = trainable
        return False
    optimizer = model.optimizer
    for variable in optimizer.variables:  # the step counter and every slot (Adam's moments)
        variable.assign(tf.zeros_like(variable))
    optimizer.learning_rate.assign(learning_rate)
    return True


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
