"""A split decoded once into a temporary file and streamed back a batch at a time."""

import numpy as np
import pytest

from edgeclf.core.errors import DataError
from edgeclf.core.run_directory import Run
from edgeclf.data.decoded import DecodedSplit


def test_batches_take_and_predict_give_the_whole_split_in_order(tiny_run):
    run = Run.open(tiny_run)
    pixels, labels, _ = run.images("val")  # the whole split in memory: the reference
    with DecodedSplit(run, "val", batch=4) as split:
        batches = list(split.batches())
        assert [len(b) for b, _ in batches] == [4] * (len(labels) // 4) + ([len(labels) % 4] if len(labels) % 4 else [])
        assert np.array_equal(np.concatenate([b for b, _ in batches]), pixels)
        assert np.array_equal(np.concatenate([y for _, y in batches]), labels) and np.array_equal(split.labels, labels)
        assert np.array_equal(split.take([5, 0, 7]), pixels[[5, 0, 7]])
        assert np.array_equal(
            split.predict(lambda b: b.reshape(len(b), -1)[:, :2].astype(np.float32)),
            pixels.reshape(len(pixels), -1)[:, :2],
        )
        assert list(split.batches())[0][0].shape == (4, *pixels.shape[1:])  # it can be read again
    with pytest.raises(ValueError):  # closed: the temporary file is gone
        list(split.batches())


def test_an_empty_split_is_a_data_error(tiny_run, monkeypatch):
    run = Run.open(tiny_run)
    with pytest.raises(DataError, match="has no 'nothing' images"):
        DecodedSplit(run, "nothing")
