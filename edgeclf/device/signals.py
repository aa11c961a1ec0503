"""Stopping a long-running device mode (watch, serve) cleanly on SIGINT or SIGTERM. TensorFlow-free."""

from __future__ import annotations

import signal
import threading


class StopSignal:
    """Installs handlers for SIGINT and SIGTERM that set an event; the loops check it between items
    (`stopped`) or sleep on it (`wait`), so that a signal ends them at the next item, not mid-way."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)):
        self.event = threading.Event()
        for sig in signals:
            signal.signal(sig, lambda *_: self.event.set())

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as a stop was asked for."""
        return self.event.wait(seconds)

    @property
    def stopped(self) -> bool:
        return self.event.is_set()
