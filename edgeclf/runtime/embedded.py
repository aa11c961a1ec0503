"""What a bare model file carries inside it, so that a .tflite or .onnx copied alone still says
what it is: labels, and the artifact's description (the same entry as in artifacts.json).

- .tflite: a zip archive appended to the flatbuffer (as the TFLite Support metadata populator
  does) holding labels.txt and edgeclf.json; the flatbuffer's own metadata (for MediaPipe and the
  Task Library) is written by edgeclf.export.tflite_metadata.
- .onnx: metadata_props, keys edgeclf.labels, edgeclf.artifact and the preprocessing.

Written at export (edgeclf.export), read here. TensorFlow-free.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from edgeclf.errors import EdgeclfError
from edgeclf.runtime.artifact import ArtifactInfo
from edgeclf.runtime.integrity import check_model_file

LABEL_FILE = "labels.txt"  # in a .tflite's zip; also beside a bare file
DESCRIPTION_FILE = "edgeclf.json"  # in a .tflite's zip
ONNX_DESCRIPTION = "edgeclf.artifact"  # an ONNX metadata_props key
ONNX_LABELS = "edgeclf.labels"
MAX_DESCRIPTION_BYTES = 1024 * 1024  # a description is a few KiB; larger is not ours


class ArtifactNotFound(EdgeclfError):
    """The requested artifact or model file is not there; the message says what is."""


def tflite_member(content: bytes, name: str) -> bytes | None:
    """A file from the zip appended to a .tflite, or None when there is no zip or no such file."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            if archive.getinfo(name).file_size > MAX_DESCRIPTION_BYTES:
                return None
            return archive.read(name)
    except (zipfile.BadZipFile, KeyError):
        return None


def tflite_labels(content: bytes) -> list[str] | None:
    """labels.txt from a .tflite's appended zip, or None."""
    data = tflite_member(content, LABEL_FILE)
    return data.decode("utf-8").splitlines() if data is not None else None


def describe_file(path: Path) -> ArtifactInfo:
    """The ArtifactInfo a bare model file carries (edgeclf.json in a .tflite's zip, or an ONNX's
    metadata_props); labels.txt beside the file fills in labels when the file has none.
    Raises ArtifactNotFound when the file carries no description."""
    check_model_file(path)  # size bound and structure before the bytes are read
    data = None
    if path.suffix == ".tflite":
        member = tflite_member(path.read_bytes(), DESCRIPTION_FILE)
        try:
            data = json.loads(member) if member is not None else None
        except (UnicodeDecodeError, ValueError):
            raise ArtifactNotFound(f"{path}: its embedded {DESCRIPTION_FILE} is not valid JSON; re-export") from None
    else:
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own Fail/InvalidProtobuf/... classes
            raise EdgeclfError(f"{path}: ONNX Runtime could not load it ({' '.join(str(exc).split())[:160]})") from None
        props = session.get_modelmeta().custom_metadata_map
        if ONNX_DESCRIPTION in props:
            data = json.loads(props[ONNX_DESCRIPTION])
    if data is None:
        raise ArtifactNotFound(
            f"{path}: carries no edgeclf description; use the export folder (artifacts.json) instead"
        )
    beside = path.with_name(LABEL_FILE)
    if isinstance(data, dict) and not data.get("labels") and beside.is_file():
        if beside.stat().st_size > MAX_DESCRIPTION_BYTES:
            raise ArtifactNotFound(f"{beside}: over {MAX_DESCRIPTION_BYTES} bytes; not a labels file")
        try:
            data["labels"] = beside.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ArtifactNotFound(f"{beside}: not UTF-8 text; one label per line expected") from None
    if not isinstance(data, dict):
        raise ArtifactNotFound(f"{path}: its embedded description is not a JSON object; re-export")
    data["path"] = path.name
    return ArtifactInfo.from_json(data, f"{path}: its embedded description")
