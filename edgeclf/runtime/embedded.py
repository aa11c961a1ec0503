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
import struct
import zipfile
import zlib
from pathlib import Path

from edgeclf.core.bounded import BoundedReadError, loads_json
from edgeclf.core.errors import EdgeclfError, ModelFileError
from edgeclf.runtime.artifact import ArtifactInfo
from edgeclf.runtime.integrity import check_model_file

LABEL_FILE = "labels.txt"  # in a .tflite's zip; also beside a bare file
DESCRIPTION_FILE = "edgeclf.json"  # in a .tflite's zip
ONNX_DESCRIPTION = "edgeclf.artifact"  # an ONNX metadata_props key
ONNX_LABELS = "edgeclf.labels"
MAX_DESCRIPTION_BYTES = 1024 * 1024  # a description is a few KiB; larger is not ours


class ArtifactNotFound(EdgeclfError):
    """The requested artifact or model file is not there; the message says what is."""


MAX_ZIP_ENTRIES = 16  # ours holds 2 (labels.txt, edgeclf.json): more is not ours


def tflite_member(content: bytes | Path, name: str) -> bytes | None:
    """A file from the zip appended to a .tflite (its bytes, or the path: then only the zip's
    records are read), or None when there is no zip or no such file. Bounded: the zip's entry count
    is read from its end record before zipfile parses its directory, and the member is inflated in
    pieces, counting the real bytes (a header may say 1,000 and inflate to 1 GiB). Raises
    EdgeclfError for a zip with too many entries, an encrypted or oddly compressed member, a member
    over MAX_DESCRIPTION_BYTES or one that does not inflate."""
    where = content if isinstance(content, Path) else "the model"
    source = content.open("rb") if isinstance(content, Path) else io.BytesIO(content)
    with source:
        entries = _zip_entry_count(source)
        if entries is None:
            return None
        if entries > MAX_ZIP_ENTRIES:
            raise ModelFileError(f"{where}: its appended zip declares {entries} entries, over {MAX_ZIP_ENTRIES}")
        try:
            with zipfile.ZipFile(source) as archive:
                try:
                    info = archive.getinfo(name)
                except KeyError:
                    return None
                if info.flag_bits & 0x1:
                    raise ModelFileError(f"{where}: {name} in its appended zip is encrypted; re-export")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise ModelFileError(
                        f"{where}: {name} in its appended zip uses compression method {info.compress_type}; "
                        "edgeclf reads stored or deflated members; re-export"
                    )
                out = bytearray()
                with archive.open(info) as member:
                    while piece := member.read(65536):
                        out += piece
                        if len(out) > MAX_DESCRIPTION_BYTES:
                            raise ModelFileError(
                                f"{where}: {name} in its appended zip inflates past {MAX_DESCRIPTION_BYTES} bytes"
                            )
                return bytes(out)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise ModelFileError(f"{where}: {name} in its appended zip is damaged ({exc}); re-export") from None


def _zip_entry_count(stream) -> int | None:
    """Total entries from the zip's end-of-central-directory record (ZIP64 counts read as over any
    cap), or None when the stream ends with no such record."""
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    tail_size = min(size, 22 + 65535)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (total,) = struct.unpack("<H", tail[at + 10 : at + 12])
    return 2**32 if total == 0xFFFF else total


def tflite_labels(content: bytes) -> list[str] | None:
    """labels.txt from a .tflite's appended zip, or None."""
    data = tflite_member(content, LABEL_FILE)
    return data.decode("utf-8").splitlines() if data is not None else None


def describe_file(path: Path) -> ArtifactInfo:
    """The ArtifactInfo a bare model file carries (edgeclf.json in a .tflite's zip, or an ONNX's
    metadata_props); labels.txt beside the file fills in labels when the file has none.
    Raises ArtifactNotFound when the file carries no description."""
    onnx = check_model_file(path)  # size bound and structure before the bytes are read
    if path.suffix == ".tflite":
        text, what = tflite_member(path, DESCRIPTION_FILE), f"{path}: its embedded {DESCRIPTION_FILE}"
    else:  # the metadata from the scan: the model is loaded once, by the backend
        text, what = onnx.metadata.get(ONNX_DESCRIPTION), f"{path}: its {ONNX_DESCRIPTION} metadata"
    try:
        data = loads_json(text, what, MAX_DESCRIPTION_BYTES) if text is not None else None
    except BoundedReadError as exc:
        raise ArtifactNotFound(f"{exc}; re-export") from None
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
