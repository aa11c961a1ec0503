"""A memory budget for decoding images in concurrent threads (serve): at most `capacity` pixels are
being decoded at once, so N clients posting small files that declare large images cannot take the
process N times the memory of one decode. One image is always admitted when nothing else is being
decoded, so any image within the pixel cap can be served; a decode that waits longer than its
timeout raises NotAdmitted (serve answers 503).

The budget is in pixels; BYTES_PER_PIXEL is what a decode costs at its peak (the decoded image,
its RGB copy, the resize's intermediate), measured with tools/soak_serve.py's memory bomb: the
figures are in docs/RELIABILITY.md (serve's soak) and docs/benchmarks/soak_serve.json.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from edgeclf.core.images import NotAdmitted

BYTES_PER_PIXEL = 16
AUTO_CAP = 2**30  # "auto" never budgets more than 1 GiB: a device service, not a batch decoder


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def capacity_pixels(memory_mb: int | str, max_pixels: int) -> int:
    """The budget in pixels for `memory_mb` (an integer, or "auto": a quarter of the memory available
    now, at most AUTO_CAP; AUTO_CAP where that is unknown). A budget below one image of max_pixels
    still serves such an image, alone."""
    if memory_mb == "auto":
        available = available_memory_bytes()
        memory = min(available // 4, AUTO_CAP) if available else AUTO_CAP
    else:
        memory = int(memory_mb) * 2**20
    return max(memory // BYTES_PER_PIXEL, 1)


class DecodeBudget:
    """`with budget.admit(pixels):` around a decode; thread-safe. Also counts what it saw."""

    def __init__(self, capacity: int, timeout: float):
        self.capacity = capacity
        self.timeout = timeout
        self.in_use = 0
        self.peak = 0
        self.refused = 0
        self._changed = threading.Condition()

    @contextmanager
    def admit(self, pixels: int) -> Iterator[None]:
        with self._changed:
            room = self._changed.wait_for(
                lambda: not self.in_use or self.in_use + pixels <= self.capacity, self.timeout
            )
            if not room:
                self.refused += 1
                raise NotAdmitted(f"decoding {self.in_use / 1e6:.0f} MP for other requests")
            self.in_use += pixels
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= pixels
                self._changed.notify_all()
