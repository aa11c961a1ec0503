"""Keras callbacks used by the training stages (imports TensorFlow: load lazily)."""

from __future__ import annotations

import math
import time

import tf_keras as keras
from rich.console import Console


class EpochLog(keras.callbacks.Callback):
    """One line per epoch on the console, and one row per epoch for history.csv."""

    def __init__(self, rows: list[dict], phase: str, total: int, console: Console):
        super().__init__()
        self.rows, self.phase, self.total, self.console = rows, phase, total, console

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

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
        self.rows.append(row)
        self.console.print(
            f"epoch {row['epoch']:>3}/{self.total} [{self.phase}]  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  lr {row['learning_rate']:.2e}  {row['seconds']:.1f}s"
        )
