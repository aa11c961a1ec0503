"""TFLite model metadata, as read by MediaPipe Tasks' ImageClassifier and the Android/iOS Task Library.

Writes a ModelMetadata flatbuffer (schema: mediapipe/tasks/metadata/metadata_schema.fbs, file
identifier "M001") into the model's `metadata` list under the name TFLITE_METADATA, and packs
labels.txt into the zip archive appended to the model file, as the TFLite Support metadata
populator does. Only the tables an image classifier needs are written: the input's image
properties, normalisation and value range; the output's label file.

Field slots follow the schema's field order; a union takes two slots (its type, then its value).
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np

from edgeclf.runtime.embedded import LABEL_FILE

METADATA_NAME = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"

_CONTENT_IMAGE = 2  # ContentProperties.ImageProperties
_CONTENT_FEATURE = 1  # ContentProperties.FeatureProperties
_PROCESS_NORMALIZATION = 1  # ProcessUnitOptions.NormalizationOptions
_COLOR_RGB = 1
_TENSOR_AXIS_LABELS = 2


def _table(b: flatbuffers.Builder, fields: list[tuple[int, str, object]]) -> int:
    """Build a table from (slot, kind, value) with kind in offset | uint32 | int8 | uint8 | int32."""
    b.StartObject(max(slot for slot, _, _ in fields) + 1 if fields else 0)
    for slot, kind, value in fields:
        if value is None:
            continue
        {
            "offset": b.PrependUOffsetTRelativeSlot,
            "uint32": b.PrependUint32Slot,
            "int8": b.PrependInt8Slot,
            "uint8": b.PrependUint8Slot,
            "int32": b.PrependInt32Slot,
        }[kind](slot, value, 0)
    return b.EndObject()


def _offsets(b: flatbuffers.Builder, items: list[int]) -> int:
    b.StartVector(4, len(items), 4)
    for item in reversed(items):
        b.PrependUOffsetTRelative(item)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values: list[float]) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=np.float32))


def build_metadata(
    name: str, description: str, image_size: tuple[int, int], mean: list[float], std: list[float], version: str
) -> bytes:
    b = flatbuffers.Builder(1024)
    strings = {
        key: b.CreateString(value)
        for key, value in {
            "name": name,
            "description": description,
            "version": version,
            "author": "edgeclf",
            "min": MIN_PARSER_VERSION,
            "in": "image",
            "in_desc": "RGB image, NHWC",
            "out": "probability",
            "out_desc": "Probabilities of the labels, in labels.txt order",
            "labels": LABEL_FILE,
            "labels_desc": "Labels for the output classes, one per line",
        }.items()
    }

    size = _table(b, [(0, "uint32", image_size[1]), (1, "uint32", image_size[0])])
    image_props = _table(b, [(0, "int8", _COLOR_RGB), (1, "offset", size)])
    input_content = _table(b, [(0, "uint8", _CONTENT_IMAGE), (1, "offset", image_props)])
    norm = _table(b, [(0, "offset", _floats(b, mean)), (1, "offset", _floats(b, std))])
    unit = _table(b, [(0, "uint8", _PROCESS_NORMALIZATION), (1, "offset", norm)])
    lo, hi = (0.0, 255.0)
    stats = _table(b, [(0, "offset", _floats(b, [hi])), (1, "offset", _floats(b, [lo]))])
    input_meta = _table(
        b,
        [
            (0, "offset", strings["in"]),
            (1, "offset", strings["in_desc"]),
            (3, "offset", input_content),
            (4, "offset", _offsets(b, [unit])),
            (5, "offset", stats),
        ],
    )

    feature = _table(b, [])
    output_content = _table(b, [(0, "uint8", _CONTENT_FEATURE), (1, "offset", feature)])
    label_file = _table(
        b, [(0, "offset", strings["labels"]), (1, "offset", strings["labels_desc"]), (2, "int8", _TENSOR_AXIS_LABELS)]
    )
    out_stats = _table(b, [(0, "offset", _floats(b, [1.0])), (1, "offset", _floats(b, [0.0]))])
    output_meta = _table(
        b,
        [
            (0, "offset", strings["out"]),
            (1, "offset", strings["out_desc"]),
            (3, "offset", output_content),
            (5, "offset", out_stats),
            (6, "offset", _offsets(b, [label_file])),
        ],
    )

    subgraph = _table(b, [(2, "offset", _offsets(b, [input_meta])), (3, "offset", _offsets(b, [output_meta]))])
    root = _table(
        b,
        [
            (0, "offset", strings["name"]),
            (1, "offset", strings["description"]),
            (2, "offset", strings["version"]),
            (3, "offset", _offsets(b, [subgraph])),
            (4, "offset", strings["author"]),
            (7, "offset", strings["min"]),
        ],
    )
    b.Finish(root, file_identifier=b"M001")
    return bytes(b.Output())


def attach(
    model_content: bytes, metadata: bytes, labels: list[str], extra_files: dict[str, str] | None = None
) -> bytes:
    """The .tflite with metadata in its flatbuffer, and labels.txt (plus extra_files) in an appended
    zip archive."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != METADATA_NAME] if model.metadata else []
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    data = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    with zipfile.ZipFile(data, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(LABEL_FILE, "\n".join(labels) + "\n")
        for name, text in (extra_files or {}).items():
            archive.writestr(name, text)
    return data.getvalue()
