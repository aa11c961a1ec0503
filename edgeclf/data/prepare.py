"""The data a training run (and `edgeclf data pack`) starts from: a data folder found, checked and
split as the configuration says, or a pack opened and checked against the image size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeclf.core.config import Config
from edgeclf.core.errors import DataError
from edgeclf.data.dataset import Dataset, discover


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
