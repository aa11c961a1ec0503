"""Checks a model file passes before a native runtime gets its bytes: it is the file artifacts.json
describes (size and sha256), and it is structurally what its name says (a TFLite flatbuffer, an
ONNX protobuf). A failure is an EdgeclfError naming the file and what to do. TensorFlow-free."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from edgeclf.core.errors import IntegrityError, ModelFileError
from edgeclf.runtime.onnx_scan import OnnxScan, scan

MAX_MODEL_BYTES = 2 * 1024**3  # larger files are refused before they are read
TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier of the TFLite schema, at bytes 4..8


def file_sha256(path: Path) -> str:
    """A file's sha256, read 1 MiB at a time (a model or a wheel is never held whole to hash it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_recorded(file: Path, size: int, sha256: str, index: Path) -> None:
    """The file has the byte count and sha256 that the index records (else it changed since
    export: re-export, re-validate, or skip this check on purpose)."""
    actual = file.stat().st_size
    hint = "re-export, run edgeclf validate on the run, or pass --no-integrity-check if you changed it on purpose"
    if actual != size:
        raise IntegrityError(f"{file}: {actual} bytes, {index} records {size}: changed since export; {hint}")
    digest = file_sha256(file)
    if digest != sha256:
        raise IntegrityError(
            f"{file}: sha256 {digest[:12]}... differs from the {sha256[:12]}... that {index} records: "
            f"changed since export; {hint}"
        )


def check_model_file(file: Path) -> OnnxScan | None:
    """A .tflite must be a flatbuffer with TFLite's identifier whose root table lies inside the
    file. An .onnx is scanned (edgeclf.runtime.onnx_scan: its external data and metadata, without
    the onnx package) and otherwise left to the runtime's own protobuf loader, whose failure the
    backend turns into an error line naming the file. Both are bounded in size first, an .onnx with
    its external data counted. Returns the .onnx's scan."""
    size = file.stat().st_size
    cap = f"over {MAX_MODEL_BYTES // 1024**3} GiB; not a model edgeclf runs"
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(f"{file}: {size} bytes, {cap}")
    if file.suffix == ".onnx":
        onnx = scan(file)
        if size + onnx.external_bytes > MAX_MODEL_BYTES:
            raise ModelFileError(f"{file}: {size} bytes and {onnx.external_bytes} of external data, {cap}")
        return onnx
    if file.suffix == ".tflite":
        with file.open("rb") as stream:
            head = stream.read(8)
        if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
            raise ModelFileError(f"{file}: not a TFLite model (no {TFLITE_IDENTIFIER.decode()} flatbuffer identifier)")
        (root,) = struct.unpack("<I", head[:4])
        if not 8 <= root <= size - 4:
            raise ModelFileError(f"{file}: a damaged TFLite flatbuffer (root table at {root} of {size} bytes)")
