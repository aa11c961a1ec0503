"""Reading a split's images from whichever storage holds them: the data folder (decoded through the
shared preprocessing, edgeclf.data.dataset) or a pack (TFRecord shards, edgeclf.data.packed, which
needs TensorFlow). One function, so that the dataset knows nothing of packs and packs import the
dataset, not the other way round."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgeclf.data.dataset import Dataset


def split_batches(
    dataset: Dataset, name: str, size: int, batch: int, positions: list[int] | None = None
) -> Iterator[np.ndarray]:
    """uint8 batches [<=batch, S, S, 3] of split `name` in the manifest's order (or only those at
    `positions`), from the pack when the dataset is packed, else from its folder."""
    if dataset.pack is not None:
        from edgeclf.data.packed import read_split

        yield from read_split(dataset, name, size, batch, positions)
    else:
        yield from dataset.batches(name, size, batch, positions)
