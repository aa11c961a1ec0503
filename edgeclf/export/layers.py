"""A quantized layer as the int8 repair ranks it (edgeclf.export.repair): the name its runtime's
quantizer takes, its op type, its multiply-accumulates per image and its error score."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class Layer:
    """One quantized layer as the runtime's quantizer names it, with its MACs per image and its
    error score (higher: more harmful; what the quantizer's `metric` says)."""

    name: str
    op: str
    macs: int
    error: float

    def to_json(self) -> dict:
        return {**asdict(self), "error": round(self.error, 6) if math.isfinite(self.error) else "inf"}
