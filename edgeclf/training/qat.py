"""`edgeclf qat`: quantization-aware training of a run's float model (tensorflow-model-optimization).

The float model minus its `normalize` layer is wrapped by tfmot's quantize_model and fine-tuned
briefly on the training split at a low rate; the validation loss is monitored and the best weights
are kept as qat_model.h5 (it takes normalised input, x / 127.5 - 1). qat.json records the float
and QAT validation accuracies and the history. Progress is logged to `edgeclf.training.qat`.

It runs under the run's `train.strategy` (edgeclf.training.distribute; `--strategy` overrides it): tfmot's
quantize wrappers are ordinary Keras layers and train under MirroredStrategy and
MultiWorkerMirroredStrategy (tested on CPU). On a multi-worker cluster every worker needs the run
directory at the same path (a shared filesystem) and only the chief writes qat_model.h5 and qat.json.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.atomic import atomic_write_json
from edgeclf.core.config import Config
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.images import normalize
from edgeclf.core.run_directory import QAT_SUMMARY, Run
from edgeclf.core.timings import Timings

log = logging.getLogger(__name__)


class QatUnsupported(EdgeclfError):
    """tfmot cannot quantize this architecture."""


@dataclass
class QatResult:
    float_val_accuracy: float
    qat_val_accuracy: float
    epochs_run: int
    seconds: float
    path: Path
    wrote: bool = True  # False on a multi-worker cluster's non-chief workers
    timings: dict[str, float] | None = None  # seconds per step (also in qat.json)


def run_qat(run_dir: Path, *, overrides: dict | None = None, option_names: dict | None = None) -> QatResult:
    """Fine-tune a quantization-aware copy of the run's model.keras and write qat_model.h5 and
    qat.json into the run. overrides: dotted config keys (qat.epochs, qat.learning_rate) given on
    the command line, option_names: how the user typed them. Raises RunDirError, QatUnsupported,
    ConfigError, EdgeclfError (validation loss never finite)."""
    run = Run.open(run_dir)
    cfg = run.config(overrides, option_names)
    from edgeclf.training.distribute import place, role, with_global_batch, writes_run

    placement = place(cfg.train.strategy)  # before TensorFlow's runtime starts
    cfg = with_global_batch(cfg, placement.replicas)
    from edgeclf.training.fit import LOGS
    from edgeclf.training.models import save_model

    started = time.perf_counter()
    timings = Timings()
    # TensorBoard's logs where this process writes the run (a cluster's other workers write none)
    logs = run.path / LOGS / "qat" if cfg.train.tensorboard and writes_run(cfg.train.strategy, role()) else None
    qat, float_acc, qat_acc, rows = _quantize_and_fine_tune(run, cfg, placement, timings, logs)
    seconds = time.perf_counter() - started
    if not writes_run(cfg.train.strategy, role()):  # a non-chief worker: the chief writes the files
        with tempfile.TemporaryDirectory(prefix="edgeclf-worker-") as tmp:
            save_model(qat, Path(tmp) / run.qat_model_path.name)  # saving reads variables collectively: all save
        return QatResult(float_acc, qat_acc, len(rows), seconds, run.qat_model_path, wrote=False)
    with timings.step("save qat_model.h5"):
        save_model(qat, run.qat_model_path)
    summary = {**_summary(run, cfg, float_acc, qat_acc, rows, seconds), "timings": timings.to_json()}
    atomic_write_json(run.path / QAT_SUMMARY, {**summary, "strategy": placement.name, "replicas": placement.replicas})
    log.info(
        f"validation accuracy: float {float_acc:.4f}, QAT {qat_acc:.4f} ({(qat_acc - float_acc) * 100:+.2f} points)"
    )
    return QatResult(float_acc, qat_acc, len(rows), seconds, run.qat_model_path, timings=timings.to_json())


def _quantize_and_fine_tune(run: Run, cfg: Config, placement, timings: Timings, logs: Path | None):
    """(QAT model, float validation accuracy, QAT validation accuracy, history rows), each step timed."""
    from edgeclf.training.fit import seed_training
    from edgeclf.training.models import load_model

    seed_training(cfg)
    with placement.scope():
        with timings.step("load and wrap the model"):
            model = load_model(run.model_path)
            qat = quantize_aware(model)
        with timings.step("calibrate activation ranges"):
            calibration = run.calibration_images(cfg.export.calibration_images, cfg.seed)
            ranges = calibrate_ranges(qat, model, calibration)
    log.info(f"QAT: {ranges} activation ranges calibrated on {len(calibration)} training images")
    with tempfile.TemporaryDirectory(prefix="edgeclf-qat-cache-") as cache:  # decoded images: on disk
        train_raw, val_raw = _datasets(run, cfg, Path(cache), placement)
        norm = run.metadata["normalization"]
        train_ds, val_ds = (ds.map(lambda x, y: (normalize(x, norm), y)) for ds in (train_raw, val_raw))
        with timings.step("float validation"):
            with placement.scope():
                model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
            _, float_acc = model.evaluate(val_raw, verbose=0)
        log.info(
            f"QAT: {cfg.qat.epochs} epoch(s) at learning rate {cfg.qat.learning_rate:g}; "
            f"float validation accuracy {float_acc:.4f}"
        )
        with timings.step(f"fine-tune ({cfg.qat.epochs} epochs)"):
            rows = _fine_tune(qat, train_ds, val_ds, cfg, placement, logs)
        with timings.step("QAT validation"):
            _, qat_acc = qat.evaluate(val_ds, verbose=0)
    return qat, float(float_acc), float(qat_acc), rows


def quantize_aware(model):
    """tfmot's quantize_model of the model after its `normalize` layer, BatchNorm frozen: its
    statistics were settled by training, and letting QAT re-estimate them moves the model away from
    the float one it should match. MobileNetV3's hard-swish, hard-sigmoid and Multiply layers are
    annotated with an output quantizer (edgeclf.training.quantize_configs), which quantize_model
    alone cannot do. Raises QatUnsupported for a MobileNetV3 built of TFOpLambda layers."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from edgeclf.training.hard_activations import has_op_layers
    from edgeclf.training.models import without_normalization
    from edgeclf.training.quantize_configs import CUSTOM_OBJECTS, annotate, needs_annotation

    core = without_normalization(model)
    for layer in core.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    if has_op_layers(core):
        raise QatUnsupported(
            "qat: this MobileNetV3 was trained before edgeclf built its hard-swish as quantizable layers (its "
            "TFOpLambda layers are what tensorflow-model-optimization cannot quantize); train it again with this "
            "edgeclf, or use post-training quantization: edgeclf export RUN --int8"
        )
    if not needs_annotation(core):
        return tfmot.quantization.keras.quantize_model(core)
    annotated = keras.models.clone_model(core, clone_function=annotate)
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        return tfmot.quantization.keras.quantize_apply(annotated)


# tfmot's activation quantizers (MovingAverageQuantizer) start at [-6, 6] and follow the batches'
# ranges with an exponential moving average of decay 0.999 (fixed in tfmot's code): after the few
# dozen steps that QAT on a small folder takes they are still near [-6, 6] (the measured ranges are
# in docs/BENCHMARKS.md, the QAT section), which wastes half the codes of a ReLU's output and clips
# larger values. So before
# fine-tuning each range is set to what the float model's tensor spans on the calibration images
# (the ones PTQ calibrates on); the moving average continues from there.
RANGE_VARIABLE = re.compile(r"^(?P<wrapper>[^/]+)/(?P<kind>output|post_activation|pre_activation)_(?P<end>min|max)")


def calibrate_ranges(qat, model, images, batch: int = 8) -> int:
    """Set the activation ranges of the tfmot model `qat` (made from the float `model` minus its
    `normalize` layer) to the min and max of the float tensors they quantize, over images (uint8
    pixels, as the float model takes them). A wrapper's output or post-activation range is its
    float layer's output; a Dense layer's pre-activation range is its logits. Returns how many
    ranges were set."""
    import numpy as np
    import tf_keras as keras

    plan = {}  # (wrapper, kind) -> {"min": var, "max": var, "layer": float layer}
    for variable in qat.non_trainable_weights:
        match = RANGE_VARIABLE.match(variable.name)
        if not match:
            continue
        inner = getattr(qat.get_layer(match["wrapper"]), "layer", None)
        if inner is None or match["kind"] == "pre_activation" and not isinstance(inner, keras.layers.Dense):
            continue
        entry = plan.setdefault((match["wrapper"], match["kind"]), {"layer": model.get_layer(inner.name)})
        entry[match["end"]] = variable
    plan = {key: e for key, e in plan.items() if "min" in e and "max" in e}
    tensors = [e["layer"].input if kind == "pre_activation" else e["layer"].output for (_, kind), e in plan.items()]
    probe = keras.Model(model.input, tensors)
    low = np.full(len(plan), np.inf)
    high = np.full(len(plan), -np.inf)
    for start in range(0, len(images), batch):
        values = probe(np.asarray(images[start : start + batch], np.float32), training=False)
        values = values if isinstance(values, list) else [values]
        for i, ((_, kind), entry) in enumerate(plan.items()):
            value = values[i].numpy()
            if kind == "pre_activation":  # a Dense layer's logits, before its activation
                value = value @ entry["layer"].kernel.numpy()
                if entry["layer"].use_bias:
                    value = value + entry["layer"].bias.numpy()
            low[i], high[i] = min(low[i], float(value.min())), max(high[i], float(value.max()))
    for i, entry in enumerate(plan.values()):
        entry["min"].assign(min(low[i], 0.0))  # a range always holds 0 (tfmot nudges it there anyway)
        entry["max"].assign(max(high[i], 0.0))
    return len(plan)


def _datasets(run: Run, cfg: Config, cache: Path, placement):
    """(training, validation) pixel datasets: the training recipe continues with the same
    augmentation as `edgeclf train` (QAT on clean images alone moves the model away from the float
    one it must stay close to); decoded images cached under `cache` as the run's config says."""
    from edgeclf.data.pipeline import build_augmenter, input_datasets
    from edgeclf.training.distribute import input_sharding, sharded

    datasets = input_datasets(run.dataset, cfg.data, cfg.seed, build_augmenter(cfg.augment, cfg.seed), cache)
    return sharded(datasets, input_sharding(run.dataset, placement.role.workers))


def _fine_tune(qat, train_ds, val_ds, cfg: Config, placement, logs: Path | None) -> list[dict]:
    """Fit with early stopping on the validation loss; the best epoch's weights are restored (kept
    in memory on every worker: an .h5 checkpoint cannot be loaded into a strategy's sync-on-read
    variables). Returns one history row per epoch."""
    import tf_keras as keras

    from edgeclf.training.callbacks import BestWeights, EpochLog
    from edgeclf.training.fit import build_training_state, tensorboard

    with placement.scope():
        qat.compile(
            optimizer=keras.optimizers.Adam(cfg.qat.learning_rate),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
            metrics=["accuracy"],
        )
        build_training_state(qat)
    rows: list[dict] = []
    best = BestWeights()
    callbacks = [
        EpochLog(rows, "qat", cfg.qat.epochs, logger=__name__),
        best,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.qat.early_stopping_patience),
        *([tensorboard(logs, cfg)] if logs else []),
    ]
    qat.fit(train_ds, validation_data=val_ds, epochs=cfg.qat.epochs, verbose=0, callbacks=callbacks)
    if best.weights is None:
        raise EdgeclfError("qat: the validation loss was never finite; lower --learning-rate")
    qat.set_weights(best.weights)
    return rows


def _summary(run: Run, cfg: Config, float_acc: float, qat_acc: float, rows: list[dict], seconds: float) -> dict:
    """qat.json."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    return {
        "model": run.qat_model_path.name,
        "source": run.model_path.name,
        "input": "normalized",
        "normalization": run.metadata["normalization"],
        "epochs": cfg.qat.epochs,
        "epochs_run": len(rows),
        "learning_rate": cfg.qat.learning_rate,
        "float_val_accuracy": float(float_acc),
        "qat_val_accuracy": float(qat_acc),
        "history": rows,
        "seconds": round(seconds, 1),
        "versions": {"tensorflow": tf.__version__, "tfmot": tfmot.__version__},
    }
