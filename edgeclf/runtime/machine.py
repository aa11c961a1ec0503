"""What a measurement was made on: CPU, board, cores, ISA flags, OS, package versions.
Written into bench.json, eval.json and verify's report. TensorFlow-free."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np

from edgeclf import __version__

FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "neon",
    "vfpv4",
)

# Arm's CPU part numbers (implementer 0x41) on the boards edgeclf targets; /proc/cpuinfo on arm64
# names no model, only this number.
ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
    "0xd40": "Neoverse-V1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd4f": "Neoverse-V2",
}


def cpuinfo_fields(text: str) -> dict[str, str]:
    """The first value of each /proc/cpuinfo key, keys lower-cased."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


def cpu_name(fields: dict[str, str]) -> str:
    part = fields.get("cpu part", "").lower()
    if fields.get("cpu implementer", "").lower() == "0x41" and part in ARM_PARTS:
        return f"Arm {ARM_PARTS[part]}"
    return fields.get("model name") or fields.get("hardware") or part or platform.processor() or "unknown"


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's ISA flags (/proc/cpuinfo's flags or features line; empty where there is none)."""
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    fields = cpuinfo_fields(cpuinfo)
    return set((fields.get("flags") or fields.get("features") or "").split())


def int8_saturation_risk(produced_by: str, machine: str | None = None, flags: set[str] | None = None) -> bool:
    """Whether an int8 ONNX file with full 8-bit weights runs here on ONNX Runtime's u8s8 kernels
    without VNNI (x86 only), where its 16-bit intermediate sums can saturate (why reduce_range exists)."""
    machine = machine or platform.machine()
    if "8-bit" not in produced_by or machine.lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    flags = cpu_flags() if flags is None else flags
    return not flags & {"avx512_vnni", "avx_vnni", "avx_vnni_int8"}


def inference_threads(threads: int | None) -> int | None:
    """What a `threads` setting means, the same in bench, predict, watch, serve, verify and sweep:
    None is the engine's default, 0 every core of this machine, N exactly N."""
    if threads is None:
        return None
    if threads < 0:
        raise ValueError(f"threads {threads}: give 0 (every core) or a positive number")
    return threads or os.cpu_count() or 1


def fingerprint(threads: int | None, device: str) -> dict:
    """What the numbers were measured on."""
    fields = cpuinfo_fields(Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else "")
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    board = Path("/proc/device-tree/model")
    versions = {"python": platform.python_version(), "numpy": np.__version__, "edgeclf": __version__}
    for module in ("onnxruntime", "ai_edge_litert", "tflite_runtime"):
        try:
            versions[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            pass
    if "tensorflow" in sys.modules:  # never imported here: the device has none
        versions["tensorflow"] = sys.modules["tensorflow"].__version__
    return {
        "cpu": cpu_name(fields),
        "board": board.read_text(errors="replace").strip("\x00\n ") if board.exists() else None,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "isa_flags": sorted(flags & set(FLAGS)),
        "os": platform.platform(),
        "versions": versions,
        "threads": threads,
        "device": device,
    }
