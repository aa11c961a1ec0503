"""Training history: history.csv and curves.png (both phases, the boundary marked)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgeclf.core.atomic import atomic_write_bytes, atomic_write_text

COLUMNS = (
    "epoch",
    "phase",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
    "train_seconds",
)


def write_history_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


def plot_curves(rows: list[dict], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric, label in ((axes[0], "loss", "loss (cross-entropy)"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [r[metric] for r in rows], marker="o", label="train")
        ax.plot(epochs, [r[f"val_{metric}"] for r in rows], marker="o", label="validation")
        boundary = next((r["epoch"] for r in rows if r["phase"] == "fine_tune"), None)
        if boundary is not None and boundary > epochs[0]:
            ax.axvline(boundary - 0.5, color="gray", linestyle="--")
            ax.text(boundary - 0.4, 0.98, "fine-tune", transform=ax.get_xaxis_transform(), va="top", color="gray")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
