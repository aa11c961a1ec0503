"""The run directory: the names of the files a run holds, the check that a new one may be
created, and `Run`, an existing run as the stages after training see it (qat, export, evaluate,
bench, report)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.core.bounded import BoundedReadError, expect_object, read_json
from edgeclf.core.config import Config, load_config
from edgeclf.core.errors import DataError, RunDirError
from edgeclf.data.dataset import Dataset

METADATA = "metadata.json"
CONFIG = "config.yaml"
DATASET = "dataset.json"
LABELS = "labels.txt"
MODEL = "model.keras"
QAT_MODEL = "qat_model.h5"  # tfmot QAT models do not round-trip through .keras
QAT_SUMMARY = "qat.json"
EXPORT_DIR = "export"
ARTIFACTS = "artifacts.json"
REPORTS = "reports"


@dataclass
class Run:
    path: Path

    @classmethod
    def open(cls, path: Path) -> Run:
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"run directory {path} does not exist; create one with edgeclf train")
        for name in (METADATA, CONFIG, DATASET, MODEL):
            if not (path / name).is_file():
                raise RunDirError(f"run directory {path} has no {name}: not a complete edgeclf run")
        return cls(path)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        try:
            return expect_object(read_json(self.path / METADATA, 64 * 2**20), str(self.path / METADATA))
        except BoundedReadError as exc:
            raise RunDirError(f"{exc}: not a complete edgeclf run") from None

    def config(self, overrides: dict[str, Any] | None = None, option_names: dict[str, str] | None = None) -> Config:
        """The run's resolved config.yaml, with command-line overrides on top."""
        return load_config([self.path / CONFIG], overrides, option_names)

    @cached_property
    def dataset(self) -> Dataset:
        data = Dataset.load(self.path / DATASET)
        if data.pack is None and not data.root.is_dir():  # a pack is checked when it is opened
            raise DataError(
                f"the run's data folder {data.root} (from {self.path / DATASET}) is gone; put it back where it was"
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
        return self.path / MODEL

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
        from edgeclf.data.reader import split_batches  # a packed run's images come from its pack

        pixels = np.concatenate(list(split_batches(self.dataset, split, self.image_size, 256)))
        return pixels, np.array([r.label for r in records], dtype=np.int64), [r.path for r in records]

    def calibration_positions(self, count: int, seed: int) -> list[int]:
        """Positions within the training split of count class-balanced images (round-robin over
        classes, seeded): the images PTQ calibrates on."""
        return self._balanced("train", count, seed, exclude=set())

    def gate_positions(self, count: int, seed: int, calibration: int) -> tuple[list[int], int]:
        """(count class-balanced training positions for the quantization gates, how many of them
        calibration used): first those that calibration (its `calibration` images with this seed)
        did not use; when they are too few (a small folder, whose training split calibration takes
        most of), the calibration images too, last."""
        used = self.calibration_positions(calibration, seed)
        unused = self._balanced("train", count, seed + 1, exclude=set(used))
        topped = used[: max(0, count - len(unused))]
        return unused + topped, len(topped)

    def _balanced(self, split: str, count: int, seed: int, exclude: set[int]) -> list[int]:
        rng = np.random.default_rng(seed)
        records = self.dataset.split(split)
        per_class = [[] for _ in self.classes]
        for i, record in enumerate(records):
            if i not in exclude:
                per_class[record.label].append(i)
        order = [list(rng.permutation(len(positions))) for positions in per_class]
        chosen = []
        while len(chosen) < count and any(order):
            for c, queue in enumerate(order):
                if queue and len(chosen) < count:
                    chosen.append(per_class[c][queue.pop(0)])
        return chosen

    def calibration_images(self, count: int, seed: int) -> np.ndarray:
        """count class-balanced training images (calibration_positions), uint8."""
        chosen = self.calibration_positions(count, seed)
        from edgeclf.data.reader import split_batches

        return np.concatenate(list(split_batches(self.dataset, "train", self.image_size, 256, chosen)))
