"""A split of a run decoded once and streamed in batches, so that no stage holds a whole split.

Evaluation and export validation run several models over the same images. Decoding them once per
model would multiply the decode time; holding them all would make memory grow with the split. So
the split is decoded a batch at a time into an anonymous temporary file of raw uint8 pixels (it
disappears when closed, even after a crash), then read back a batch at a time for each model:
memory is one batch of pixels plus the labels; the disk holds N x H x W x 3 bytes for the run of
the stage. TensorFlow-free for a data folder (a packed one is read with TensorFlow).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import numpy as np

from edgeclf.core.errors import DataError
from edgeclf.data.reader import split_batches

BATCH = 256  # images decoded, held and predicted at a time


class DecodedSplit:
    """with DecodedSplit(run, "val") as split: split.labels, split.batches(), split.take(indices)."""

    def __init__(self, run, split: str, batch: int = BATCH, positions: list[int] | None = None):
        """The whole split, or only the images at `positions` within it (in that order)."""
        records = run.dataset.split(split)
        if positions is not None:
            records = [records[i] for i in positions]
        if not records:
            raise DataError(f"the run {run.path} has no '{split}' images")
        self.size = run.image_size
        self.batch = batch
        self.labels = np.array([r.label for r in records], dtype=np.int64)
        self._image_bytes = self.size * self.size * 3
        self._file = tempfile.TemporaryFile(prefix="edgeclf-decoded-")
        for pixels in split_batches(run.dataset, split, self.size, batch, positions):
            self._file.write(np.ascontiguousarray(pixels, np.uint8).tobytes())

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(uint8 pixels [<=batch,S,S,3], labels) in the split's order."""
        self._file.seek(0)
        for start in range(0, len(self), self.batch):
            count = min(self.batch, len(self) - start)
            data = self._file.read(count * self._image_bytes)
            yield (
                np.frombuffer(data, np.uint8).reshape(count, self.size, self.size, 3),
                self.labels[start : start + count],
            )

    def take(self, indices: list[int]) -> np.ndarray:
        """The pixels of a few images by index (parity samples)."""
        out = np.empty((len(indices), self.size, self.size, 3), np.uint8)
        for k, i in enumerate(indices):
            self._file.seek(int(i) * self._image_bytes)
            out[k] = np.frombuffer(self._file.read(self._image_bytes), np.uint8).reshape(self.size, self.size, 3)
        return out

    def predict(self, predict_pixels) -> np.ndarray:
        """predict_pixels (uint8 batch -> probabilities) over the whole split, a batch at a time."""
        return np.concatenate([predict_pixels(pixels) for pixels, _ in self.batches()])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> DecodedSplit:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
