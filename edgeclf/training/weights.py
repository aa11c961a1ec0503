"""Where the backbone's starting weights come from: ImageNet (Keras' download and cache), a local
file, an earlier edgeclf run, or random initialisation.

`--weights auto` uses ImageNet weights when Keras has them cached or can download them, and falls
back to random initialisation with a loud warning otherwise; the choice is recorded in the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.errors import WeightsError

# Keras publishes no-top ImageNet weights for these widths (tf_keras.applications).
IMAGENET_ALPHAS = {
    "mobilenet_v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    "mobilenet_v3_small": (0.75, 1.0),
    "mobilenet_v3_large": (0.75, 1.0),
}
MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class WeightsRequest:
    """What the user asked for, parsed: kind is auto, imagenet, none, file (a Keras .h5 or .keras
    file holding the backbone) or run (an earlier edgeclf run's model.keras)."""

    kind: str
    path: Path | None = None

    @classmethod
    def parse(cls, value: str) -> WeightsRequest:
        if value in ("auto", "imagenet", "none"):
            return cls(value)
        path = Path(value).expanduser()
        if path.is_dir() and (path / "model.keras").is_file():
            return cls("run", path / "model.keras")
        if not path.exists():
            raise WeightsError(
                f"--weights {value}: no such file; use auto, imagenet, none, a Keras .h5/.keras file or an edgeclf run"
            )
        if path.is_file() and path.suffix.lower() in (".h5", ".hdf5", ".keras"):
            return cls("file", path)
        raise WeightsError(
            f"--weights {value}: expected a Keras .h5 or .keras file (a whole model or weights holding the "
            "backbone) or an edgeclf run directory"
        )


@dataclass(frozen=True)
class WeightsSource:
    """What was actually loaded, recorded in the run's metadata. file: for a Keras file or an
    earlier run, its sha256, kind, Keras version, the layers it was nested in, and how many
    backbone layers matched (edgeclf.training.weights_file.LoadedBackbone.to_json)."""

    requested: str
    source: str  # imagenet | random | file | run
    pretrained: bool
    path: str | None = None
    note: str = ""
    file: dict | None = None

    def to_json(self) -> dict:
        record = {
            "requested": self.requested,
            "source": self.source,
            "pretrained": self.pretrained,
            "path": self.path,
            "note": self.note,
        }
        if self.file is not None:
            record["file"] = self.file
        return record


def keras_cache_dir() -> Path:
    """Where tf_keras' get_file caches application weights: ~/.keras/models (or /tmp/.keras/models
    when the home folder is not writable), exactly as tf_keras.utils.get_file decides."""
    base = os.path.join(os.path.expanduser("~"), ".keras")
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return Path(base) / "models"


def imagenet_file_name(model: str, alpha: float, image_size: int) -> str | None:
    """The file Keras downloads for these no-top ImageNet weights, or None when Keras has none."""
    if alpha not in IMAGENET_ALPHAS.get(model, ()):
        return None
    if model == "mobilenet_v2":
        rows = image_size if image_size in MOBILENET_V2_SIZES else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"
    kind = "small" if model.endswith("small") else "large"
    return f"weights_mobilenet_v3_{kind}_224_{alpha}_float_no_top_v2.h5"


def how_to_place(model: str, alpha: float, image_size: int) -> str:
    name = imagenet_file_name(model, alpha, image_size)
    return f"copy {name} into {keras_cache_dir()}/ (Keras' cache) or pass --weights /path/to/{name}"
