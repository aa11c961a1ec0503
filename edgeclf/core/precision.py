"""The precision of an artifact, one type for every module that asks about it (before: a free
string compared in 20 places). A str enum: it reads and writes as the same strings in
artifacts.json, and compares equal to them."""

from __future__ import annotations

from enum import Enum


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    DYNAMIC = "dynamic"  # dynamic-range: int8 weights, float activations
    INT8_PTQ = "int8-ptq"
    INT8_QAT = "int8-qat"
    INT8_MIXED = "int8-mixed"  # int8 with the layers that broke the accuracy gate kept in float (export.repair)

    def __str__(self) -> str:
        return self.value

    @property
    def is_integer(self) -> bool:
        """Integer I/O, activations and weights (int8, post-training or quantization-aware; a mixed
        file keeps a few named layers in float inside, its I/O and other layers int8)."""
        return self in (Precision.INT8_PTQ, Precision.INT8_QAT, Precision.INT8_MIXED)

    @property
    def is_mixed(self) -> bool:
        """int8 with named layers kept in float (edgeclf.export.repair)."""
        return self is Precision.INT8_MIXED

    @property
    def is_float(self) -> bool:
        """Float arithmetic end to end (fp32, fp16, bf16); dynamic-range is neither."""
        return self in (Precision.FP32, Precision.FP16, Precision.BF16)

    @property
    def openvino_only(self) -> bool:
        """bf16 files run on OpenVINO's CPU plugin only."""
        return self is Precision.BF16
