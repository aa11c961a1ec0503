"""Inference engines behind one small interface: run(batch) -> raw output array, one module per
engine (litert_backend, onnxruntime_backend, openvino_backend), the engine table and resolution
in engines.py, and open_backend here, the one factory every runner calls.

Which engine runs an artifact is written in artifacts.json (`engine`; empty means the format's
default: LiteRT for .tflite, ONNX Runtime for .onnx); `--engine` overrides it for ONNX files.
"""

from __future__ import annotations

from pathlib import Path

from edgeclf.core.errors import ConfigError, EngineUnsupportedError
from edgeclf.runtime.backends.engines import (
    DEFAULT_ENGINE,
    DISPLAY,
    ENGINE_CHOICES,
    ENGINES,
    KERNELS,
    engine_available,
    engine_of,
    engine_version,
    for_engine,
    import_engine,
    resolve_engine,
    runnable,
)
from edgeclf.runtime.backends.litert_backend import LiteRTBackend
from edgeclf.runtime.backends.onnxruntime_backend import OnnxBackend, onnx_providers
from edgeclf.runtime.backends.openvino_backend import MAX_COMPILED_SHAPES, OpenVinoBackend, native_bf16
from edgeclf.runtime.integrity import check_model_file
from edgeclf.runtime.machine import inference_threads

__all__ = [
    "DEFAULT_ENGINE",
    "DISPLAY",
    "ENGINES",
    "ENGINE_CHOICES",
    "KERNELS",
    "MAX_COMPILED_SHAPES",
    "LiteRTBackend",
    "OnnxBackend",
    "OpenVinoBackend",
    "engine_available",
    "engine_of",
    "engine_version",
    "for_engine",
    "import_engine",
    "native_bf16",
    "onnx_providers",
    "open_backend",
    "resolve_engine",
    "runnable",
]


def open_backend(
    path: Path,
    threads: int | None = None,
    device: str = "cpu",
    kernels: str = "fast",
    engine: str | None = None,
    precision: str = "fp32",
):
    """The backend for a file on `engine` (resolve_engine's answer; None: the format's default) with
    `threads` as inference_threads reads it (None: the engine's default, 0: every core).
    LiteRT runs on the CPU (its GPU delegate has no desktop Python build); ONNX Runtime uses the
    providers for `device`; OpenVINO runs on the CPU with the precision hint of `precision`."""
    path, threads = Path(path), inference_threads(threads)
    if kernels not in KERNELS:
        raise ConfigError(f"--kernels {kernels}: choose one of {', '.join(KERNELS)}")
    check_model_file(path)  # before any native runtime reads the bytes
    engine = engine or resolve_engine(path)
    if precision == "bf16" and engine != "openvino":
        raise EngineUnsupportedError(
            f"{path.name}: bf16 artifacts run on OpenVINO only (--engine {engine} was asked for)"
        )
    if engine == "litert":
        return LiteRTBackend(path, threads, kernels)
    if kernels != "fast":
        raise ConfigError(
            f"--kernels {kernels}: {path.name} is an ONNX file and {DISPLAY[engine]} has no reference "
            "kernels; use a .tflite artifact or --kernels fast"
        )
    if engine == "openvino":
        if device != "cpu":
            raise ConfigError(f"--device {device}: edgeclf runs OpenVINO on the CPU only; use --engine onnxruntime")
        return OpenVinoBackend(path, threads, precision)
    return OnnxBackend(path, threads, onnx_providers(device))
