"""Seconds per named step of a stage, recorded in the run (metadata.json, artifacts.json) so that
where a stage's time goes is known without a profiler; `edgeclf --verbose` prints them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    """Named steps in the order they first ran; a step run twice (two candidates of one artifact)
    adds up. Wall-clock seconds (time.perf_counter), rounded to milliseconds."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + time.perf_counter() - started, 3)

    def total(self) -> float:
        return round(sum(self.steps.values()), 3)

    def to_json(self) -> dict[str, float]:
        return dict(self.steps)
