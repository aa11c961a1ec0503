"""Keras callbacks used by the training stages (imports TensorFlow: load lazily)."""

from __future__ import annotations

import logging
import math
import time

import tf_keras as keras


class EpochLog(keras.callbacks.Callback):
    """One row per epoch for history.csv, and one line per epoch logged to `logger`. `seconds` is the
    whole epoch (training steps, then whatever runs before and during validation); `train_seconds`
    the training steps alone (until validation begins), what images/s is computed from.

    on_row(rows) is called once the row is recorded. With announce=False the line is not logged
    here: `announcer()` is a callback that logs it, to be listed last, after whatever saves state
    (so that a logged epoch is an epoch saved)."""

    def __init__(
        self,
        rows: list[dict],
        phase: str,
        total: int,
        logger: str = "edgeclf.training.train",
        on_row=None,
        announce=True,
    ):
        super().__init__()
        self.rows, self.phase, self.total = rows, phase, total
        self.log = logging.getLogger(logger)
        self.on_row, self.announce = on_row, announce

    def announcer(self) -> keras.callbacks.Callback:
        return keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self._line(self.rows[-1]))

    def _line(self, row: dict) -> None:
        self.log.info(
            f"epoch {row['epoch']:>3}/{self.total} [{self.phase}]  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
            f"lr {row['learning_rate']:.2e}  {row['seconds']:.1f}s"
        )

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.train_seconds = None

    def on_test_begin(self, logs=None):  # fit's validation (this callback is listed before the others)
        if getattr(self, "train_seconds", 0) is None:
            self.train_seconds = time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {
            "epoch": epoch + 1,
            "phase": self.phase,
            "loss": float(logs.get("loss", math.nan)),
            "accuracy": float(logs.get("accuracy", math.nan)),
            "val_loss": float(logs.get("val_loss", math.nan)),
            "val_accuracy": float(logs.get("val_accuracy", math.nan)),
            "learning_rate": float(keras.backend.get_value(self.model.optimizer.learning_rate)),
            "seconds": round(time.perf_counter() - self.started, 3),
        }
        row["train_seconds"] = round(self.train_seconds, 3) if self.train_seconds is not None else row["seconds"]
        logs["learning_rate"] = row["learning_rate"]  # for the callbacks after this one (TensorBoard's scalars)
        self.rows[:] = [r for r in self.rows if r["epoch"] != row["epoch"]]  # a resumed epoch runs again
        self.rows.append(row)
        if self.on_row:
            self.on_row(self.rows)
        if self.announce:
            self._line(row)


class BestWeights(keras.callbacks.Callback):
    """The weights of the epoch with the lowest finite val_loss so far (across every fit it is given
    to), held in memory. Every process of a multi-worker run holds the same copy (val_loss is
    reduced across workers), so each can return to the best weights, where ModelCheckpoint's file
    exists on the chief only. `best` may start from an earlier value (a resumed run)."""

    def __init__(self, best: float | None = None):
        super().__init__()
        self.best, self.weights = best, None

    def on_epoch_end(self, epoch, logs=None):
        loss = float((logs or {}).get("val_loss", math.nan))
        if math.isfinite(loss) and (self.best is None or loss < self.best):
            self.best, self.weights = loss, self.model.get_weights()


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before each validation during fit, replace every trainable BatchNorm layer's moving mean and
    variance by the population statistics of the current weights, averaged over `batches` training
    batches in training mode ("PreciseBN", Wu & Johnson, "Rethinking Batch in BatchNorm", 2021).

    Why: a network trained from random weights changes fast, and the exponential moving averages
    lag behind it. Measured on 4 Fashion-MNIST classes, MobileNetV2 0.35 at 32 px from scratch: the
    training accuracy climbs while inference predicts one class (validation at chance) for the first
    4 epochs with momentum 0.9; early stopping then keeps the first epoch. With these statistics the
    validation accuracy is 0.47 after the first epoch. The checkpoint saved after validation carries
    them, so model.keras has statistics that belong to its own weights.
    """

    def __init__(self, dataset, batches: int):
        super().__init__()
        self.dataset, self.batches = dataset, batches
        self._forward = None  # compiled once per fit (which layers train, and so run in training mode, is traced in)

    def on_train_begin(self, logs=None):
        self._forward = batch_statistics_forward(self.model)

    def on_train_end(self, logs=None):
        self._forward = None

    def on_test_begin(self, logs=None):
        if self._forward is not None:
            recompute_batchnorm(self.model, self.dataset, self.batches, self._forward)


def _trainable_batchnorms(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def batch_statistics_forward(model):
    """model(x, training=True) compiled with every trainable BatchNorm's momentum at 0, so that a
    call leaves each layer's batch mean and (unbiased) variance in its moving statistics. The
    momentum is read when the function is traced: the layers get theirs back afterwards."""
    import tensorflow as tf

    layers = _trainable_batchnorms(model)
    saved = [layer.momentum for layer in layers]
    forward = tf.function(lambda x: model(x, training=True), reduce_retracing=True)
    try:
        for layer in layers:
            layer.momentum = 0.0
        forward.get_concrete_function(tf.TensorSpec([None, *model.input_shape[1:]], tf.float32))
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
    return forward


def recompute_batchnorm(model, dataset, batches: int, forward=None) -> int:
    """Set the moving statistics of model's trainable BatchNorm layers to the average of their batch
    statistics over `batches` batches of dataset (upstream layers in training mode, as PreciseBN
    has it). Weights are not touched. `forward` is batch_statistics_forward(model) (made here when
    not given): each compiled call leaves one batch's statistics, which are averaged here. Returns
    the number of batches used."""
    layers = _trainable_batchnorms(model)
    if not layers or batches < 1:
        return 0
    forward = forward or batch_statistics_forward(model)
    sums = [[0.0, 0.0] for _ in layers]
    used = 0
    for x, _ in dataset.take(batches):
        forward(x)
        for total, layer in zip(sums, layers, strict=True):
            total[0] += layer.moving_mean.numpy()
            total[1] += layer.moving_variance.numpy()
        used += 1
    if not used:  # an empty dataset: the statistics stay as they were
        return 0
    for (mean, variance), layer in zip(sums, layers, strict=True):
        layer.moving_mean.assign(mean / used)
        layer.moving_variance.assign(variance / used)
    return used
