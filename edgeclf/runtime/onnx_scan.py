"""What an .onnx file holds besides its graph, read without the onnx package (the device does not
have it) and without loading the model: its metadata_props, and the external data its tensors
point to (initializers, sparse initializers and those of subgraphs in node attributes, at any
depth up to MAX_GRAPH_DEPTH). The model's size bound counts the external data, and edgeclf's
description is read from the metadata without a second ONNX Runtime session.

A minimal protobuf walk over the ModelProto fields that lead there; every other field is skipped by
its length, so a 2 GiB file is scanned without reading its weights. Field numbers are onnx.proto's.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

from edgeclf.core.errors import ModelFileError

MAX_GRAPH_DEPTH = 8
MAX_METADATA_BYTES = 1024 * 1024

# onnx.proto field numbers
MODEL_GRAPH, MODEL_METADATA = 7, 14
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_ATTRIBUTE = 5
ATTRIBUTE_T, ATTRIBUTE_G, ATTRIBUTE_TENSORS, ATTRIBUTE_GRAPHS = 5, 6, 10, 11
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 13, 14
SPARSE_VALUES, SPARSE_INDICES = 1, 2
ENTRY_KEY, ENTRY_VALUE = 1, 2
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@dataclass
class OnnxScan:
    metadata: dict[str, str] = field(default_factory=dict)
    external: dict[str, int] = field(default_factory=dict)  # location -> bytes it is asked for (at most)

    @property
    def external_bytes(self) -> int:
        return sum(self.external.values())


class _Damaged(Exception):
    pass


def scan(path: Path) -> OnnxScan:
    """The file's metadata and external-data references. Raises EdgeclfError for a file that is not
    a well-formed protobuf along the walked fields, or whose external data lies outside its folder
    or is missing."""
    path = Path(path)
    result = OnnxScan()
    try:
        with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for number, start, end in _fields(data, 0, len(data)):
                if number == MODEL_GRAPH:
                    _graph(data, start, end, result, 0)
                elif number == MODEL_METADATA:
                    key, value = _entry(data, start, end)
                    if end - start > MAX_METADATA_BYTES:
                        raise _Damaged(f"a metadata entry of {end - start} bytes")
                    result.metadata[key] = value
    except ValueError as exc:  # mmap of an empty file
        raise ModelFileError(f"{path}: not an ONNX model ({exc})") from None
    except _Damaged as exc:
        raise ModelFileError(f"{path}: not a well-formed ONNX model ({exc})") from None
    folder = path.resolve().parent
    for location, wanted in list(result.external.items()):
        target = (folder / location).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            raise ModelFileError(f"{path}: its external data {location[:80]!r} is not a file beside it")
        result.external[location] = wanted if wanted >= 0 else target.stat().st_size
    return result


def _varint(data, at: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= end or shift > 63:
            raise _Damaged("a truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _walk(data, at: int, end: int):
    """(field number, wire type, value, start, end) of each field in data[at:end]: a varint's value
    (wire 0), or a length-delimited field's span (wire 2); fixed-size fields are skipped."""
    while at < end:
        key, at = _varint(data, at, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at, end)
            yield number, wire, value, at, at
        elif wire == 2:
            length, at = _varint(data, at, end)
            if at + length > end:
                raise _Damaged(f"field {number} runs past its message")
            yield number, wire, None, at, at + length
            at += length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise _Damaged(f"wire type {wire}")
    if at > end:
        raise _Damaged("a field runs past its message")


def _fields(data, at: int, end: int):
    """(field number, start, end) of each length-delimited field in data[at:end]."""
    return ((number, start, stop) for number, wire, _, start, stop in _walk(data, at, end) if wire == 2)


def _varint_fields(data, at: int, end: int) -> dict[int, int]:
    """{field number: value} of the varint fields in data[at:end]."""
    return {number: value for number, wire, value, _, _ in _walk(data, at, end) if wire == 0}


def _entry(data, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    for number, s, e in _fields(data, start, end):
        text = bytes(data[s:e]).decode("utf-8", "replace")
        if number == ENTRY_KEY:
            key = text
        elif number == ENTRY_VALUE:
            value = text
    return key, value


def _graph(data, start: int, end: int, result: OnnxScan, depth: int) -> None:
    if depth > MAX_GRAPH_DEPTH:
        raise _Damaged(f"subgraphs nested over {MAX_GRAPH_DEPTH} deep")
    for number, s, e in _fields(data, start, end):
        if number == GRAPH_INITIALIZER:
            _tensor(data, s, e, result)
        elif number == GRAPH_SPARSE_INITIALIZER:
            for inner, ts, te in _fields(data, s, e):
                if inner in (SPARSE_VALUES, SPARSE_INDICES):
                    _tensor(data, ts, te, result)
        elif number == GRAPH_NODE:
            for inner, as_, ae in _fields(data, s, e):
                if inner == NODE_ATTRIBUTE:
                    _attribute(data, as_, ae, result, depth)


def _attribute(data, start: int, end: int, result: OnnxScan, depth: int) -> None:
    for number, s, e in _fields(data, start, end):
        if number in (ATTRIBUTE_G, ATTRIBUTE_GRAPHS):
            _graph(data, s, e, result, depth + 1)
        elif number in (ATTRIBUTE_T, ATTRIBUTE_TENSORS):
            _tensor(data, s, e, result)


def _tensor(data, start: int, end: int, result: OnnxScan) -> None:
    """A TensorProto stored externally adds its location and length (-1: to the end of the file)."""
    if _varint_fields(data, start, end).get(TENSOR_DATA_LOCATION) != EXTERNAL:
        return
    entries = dict(_entry(data, s, e) for number, s, e in _fields(data, start, end) if number == TENSOR_EXTERNAL_DATA)
    location = entries.get("location", "")
    try:
        length = int(entries["length"]) if "length" in entries else -1
    except ValueError:
        raise _Damaged(f"external data length {entries['length'][:20]!r}") from None
    if not location:
        raise _Damaged("external data without a location")
    previous = result.external.get(location, 0)
    result.external[location] = -1 if length < 0 or previous < 0 else previous + length
