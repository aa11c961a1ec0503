"""Figures for the reports (matplotlib, Agg): confusion matrices, accuracy vs latency, latency
distributions. Each returns PNG bytes."""

from __future__ import annotations

import io

import numpy as np


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(*args, **kwargs)


def _png(plt, fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def confusion_png(matrix: list[list[int]], classes: list[str], title: str) -> bytes:
    m = np.asarray(matrix)
    size = max(4.0, 0.5 * len(classes) + 2)
    plt, fig, ax = _figure(figsize=(size + 1, size), constrained_layout=True)
    image = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if m[i, j] > m.max() / 2 else "black",
            )
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.7)
    return _png(plt, fig)


MARKERS = "osD^v<>pPX*h"


def accuracy_latency_png(points: list[tuple[str, float, float]], title: str, highlight: str | None = None) -> bytes:
    """points: (label, p50 latency ms, accuracy 0..1). Each point has its own colour and marker and
    is named in a legend beside the axes (labels written at the points overlap when artifacts are
    close); `highlight` (the recommended artifact) is drawn larger and marked in the legend. Points
    of the same accuracy are spread apart vertically (by a fifth of the axis' smallest step, said in
    the axis label) so that none hides another; the log axis is labelled in plain milliseconds."""
    plt, fig, ax = _figure(figsize=(8.5, 4.5), constrained_layout=True)
    offsets = tied_offsets([(round(accuracy * 100, 6), latency) for _, latency, accuracy in points])
    for k, (label, latency, accuracy) in enumerate(points):
        chosen = label == highlight
        name = f"{label} (recommended)" if chosen else label
        ax.scatter(
            latency,
            accuracy * 100 + offsets[k],
            marker=MARKERS[k % len(MARKERS)],
            s=110 if chosen else 45,
            edgecolors="black" if chosen else "none",
            label=name,
        )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    _plain_log_axis(ax)
    ax.set_xlabel("p50 latency, batch 1 (ms, log scale)")
    ax.set_ylabel(f"test accuracy (%; tied points spread by {TIE_SPREAD:g})" if any(offsets) else "test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    return _png(plt, fig)


TIE_SPREAD = 0.05  # accuracy points between tied points on the accuracy-vs-latency figure


def tied_offsets(points: list[tuple[float, float]], near: float = 0.04) -> list[float]:
    """A vertical offset per (accuracy, latency) point: 0, except for points of the same accuracy whose
    latencies are within `near` of each other on the log axis (they would hide each other), which
    spread symmetrically around their accuracy, TIE_SPREAD apart."""
    offsets = [0.0] * len(points)
    for accuracy in {a for a, _ in points}:
        tied = sorted((i for i, (a, _) in enumerate(points) if a == accuracy), key=lambda i: points[i][1])
        clusters: list[list[int]] = []
        for i in tied:
            if clusters and np.log10(points[i][1]) - np.log10(points[clusters[-1][-1]][1]) < near:
                clusters[-1].append(i)
            else:
                clusters.append([i])
        for cluster in clusters:
            for rank, i in enumerate(cluster):
                offsets[i] = (rank - (len(cluster) - 1) / 2) * TIE_SPREAD if len(cluster) > 1 else 0.0
    return offsets


def _plain_log_axis(ax) -> None:
    """A log x axis with major ticks labelled as plain numbers (0.3, 1, 2) and minor ticks
    unlabelled: matplotlib's default writes every minor tick as 3x10^-1, and they run together."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def latency_distribution_png(samples: dict[str, list[float]], title: str) -> bytes:
    plt, fig, ax = _figure(figsize=(8, 0.5 * len(samples) + 2), constrained_layout=True)
    names = list(samples)
    ax.boxplot([samples[n] for n in names], orientation="horizontal", showfliers=True)
    ax.set_yticks(range(1, len(names) + 1), names)
    _plain_log_axis(ax)
    ax.set_xlabel("latency per inference, batch 1 (ms, log scale)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(title)
    return _png(plt, fig)


def pareto_png(
    points: list[tuple[str, float, float]], front: list[str], chosen: str | None, x_label: str, title: str
) -> bytes:
    """points: (label, cost, accuracy 0..1), cost on a log axis, each marked with its label's last
    word (a trial number, a run name); the Pareto front joined by a line, the chosen point ringed."""
    plt, fig, ax = _figure(figsize=(7.5, 4.5), constrained_layout=True)
    on_front = set(front)
    for label, cost, accuracy in points:
        ax.scatter(cost, accuracy * 100, s=40, color="tab:blue" if label in on_front else "tab:gray", zorder=2)
        ax.annotate(label.split()[-1], (cost, accuracy * 100), textcoords="offset points", xytext=(4, -10), fontsize=7)
    line = sorted((cost, accuracy * 100) for label, cost, accuracy in points if label in on_front)
    if line:
        ax.plot(*zip(*line, strict=True), color="tab:blue", alpha=0.6, drawstyle="steps-post", label="Pareto front")
    for label, cost, accuracy in points:
        if label == chosen:
            ax.scatter(
                cost,
                accuracy * 100,
                s=220,
                facecolors="none",
                edgecolors="red",
                linewidths=2,
                label=f"chosen: {label}",
                zorder=3,
            )
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("int8 validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return _png(plt, fig)
