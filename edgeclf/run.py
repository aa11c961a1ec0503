"""An existing run directory, as the stages after training see it (qat, export, evaluate, bench)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.config import Config, load_config
from edgeclf.dataset import Dataset
from edgeclf.errors import DataError, RunDirError
from edgeclf.images import load_image

QAT_MODEL = "qat_model.h5"  # tfmot QAT models do not round-trip through .keras
QAT_SUMMARY = "qat.json"
EXPORT_DIR = "export"
ARTIFACTS = "artifacts.json"


@dataclass
class Run:
    path: Path

    @classmethod
    def open(cls, path: Path) -> Run:
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"run directory {path} does not exist; create one with edgeclf train")
        for name in ("metadata.json", "config.yaml", "dataset.json", "model.keras"):
            if not (path / name).is_file():
                raise RunDirError(f"run directory {path} has no {name}: not a complete edgeclf run")
        return cls(path)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        return json.loads((self.path / "metadata.json").read_text(encoding="utf-8"))

    def config(self, overrides: dict[str, Any] | None = None, option_names: dict[str, str] | None = None) -> Config:
        """The run's resolved config.yaml, with command-line overrides on top."""
        return load_config([self.path / "config.yaml"], overrides, option_names)

    @cached_property
    def dataset(self) -> Dataset:
        data = Dataset.load(self.path / "dataset.json")
        if not data.root.is_dir():
            raise DataError(
                f"the run's data folder {data.root} (from {self.path / 'dataset.json'}) is gone; "
                "put it back where it was"
            )
        return data

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def image_size(self) -> int:
        return int(self.metadata["preprocessing"]["size"][0])

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def qat_model_path(self) -> Path:
        return self.path / QAT_MODEL

    @property
    def has_qat(self) -> bool:
        return self.qat_model_path.is_file()

    @property
    def export_dir(self) -> Path:
        return self.path / EXPORT_DIR

    def images(self, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(uint8 images [N,S,S,3] through the shared preprocessing, labels [N], relative paths)."""
        records = self.dataset.split(split)
        if not records:
            raise DataError(f"the run {self.path} has no '{split}' images")
        pixels = np.stack([load_image(self.dataset.root / r.path, self.image_size) for r in records])
        return pixels, np.array([r.label for r in records], dtype=np.int64), [r.path for r in records]

    def calibration_images(self, count: int, seed: int) -> np.ndarray:
        """count class-balanced training images (round-robin over classes, seeded), uint8."""
        rng = np.random.default_rng(seed)
        per_class = [[r for r in self.dataset.split("train") if r.label == c] for c in range(len(self.classes))]
        order = [list(rng.permutation(len(files))) for files in per_class]
        chosen = []
        while len(chosen) < count and any(order):
            for c, queue in enumerate(order):
                if queue and len(chosen) < count:
                    chosen.append(per_class[c][queue.pop(0)])
        return np.stack([load_image(self.dataset.root / r.path, self.image_size) for r in chosen])
