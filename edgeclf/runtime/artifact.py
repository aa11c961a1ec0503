"""An exported artifact as described in artifacts.json: the one source of truth for its input
(dtype, scale, zero point, whether it expects raw pixels or normalised values), its output, the
preprocessing and the labels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeclf.core.bounded import BoundedReadError, read_json
from edgeclf.core.errors import EdgeclfError, MalformedIndexError
from edgeclf.core.precision import Precision

ARTIFACTS_VERSION = 1
MAX_INDEX_BYTES = 8 * 1024 * 1024  # an artifacts.json larger than this is refused before it is read
MAX_ENTRIES = 256
MAX_IMAGE_SIDE = 4096  # preprocessing.size: pixels per side an artifact may ask for


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as the file has it: dtype, shape and, for uint8/int8 tensors, the
    quantization (real = (q - zero_point) * scale) that quantize() and dequantize() apply."""

    name: str
    dtype: str  # float32 | float16 | uint8 | int8
    shape: list
    scale: float | None = None  # quantization: real = (q - zero_point) * scale
    zero_point: int | None = None
    layout: str | None = None  # NHWC for images
    expects: str | None = None  # input only: "pixels" (0..255) or "normalized" (pixels * a + b)

    @property
    def quantized(self) -> bool:
        return self.dtype in ("uint8", "int8")

    def quantize(self, values: np.ndarray) -> np.ndarray:
        info = np.iinfo(self.dtype)
        return np.clip(np.round(values / self.scale + self.zero_point), info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        return ((values.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


@dataclass
class ArtifactInfo:
    """One entry of artifacts.json: the artifact's file, I/O, labels, preprocessing and
    normalisation (what every runner reads instead of guessing), and its validation verdict."""

    name: str
    format: str  # tflite | onnx
    precision: Precision
    path: str  # relative to the run directory
    input: TensorInfo
    output: TensorInfo
    labels: list[str]
    preprocessing: dict[str, Any]
    normalization: dict[str, Any]
    bytes: int = 0
    sha256: str = ""
    source_model: str = ""
    produced_by: str = ""
    status: str = "ok"
    validation: dict[str, Any] = field(default_factory=dict)
    engine: str = ""  # litert | onnxruntime | openvino; empty: the format's default
    # int8-mixed: the artifacts it repairs, the layers kept in float and the search (edgeclf.export.repair)
    repair_record: dict[str, Any] = field(default_factory=dict)

    @property
    def float_layers(self) -> list[str]:
        """Names of the layers an int8-mixed file keeps in float (none for other precisions)."""
        layers = self.repair_record.get("float_layers")
        if not isinstance(layers, list):
            return []
        return [layer["name"] for layer in layers if isinstance(layer, dict) and isinstance(layer.get("name"), str)]

    @property
    def image_size(self) -> tuple[int, int]:
        height, width = self.preprocessing["size"]
        return int(height), int(width)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if not out["repair_record"]:
            del out["repair_record"]  # written for repaired (int8-mixed) artifacts only
        return out

    def __post_init__(self) -> None:
        self.precision = Precision(self.precision)  # a str from a caller becomes the enum (ValueError if unknown)

    @classmethod
    def from_json(cls, data: Any, where: str = "artifact description") -> ArtifactInfo:
        """An entry checked field by field (types, and the image size within 1..MAX_IMAGE_SIDE);
        raises EdgeclfError naming `where` and the field."""
        from pydantic import TypeAdapter, ValidationError

        name = data.get("name") if isinstance(data, dict) and isinstance(data.get("name"), str) else None
        label = f"{where} ({name[:80]!r})" if name else where
        try:
            info = TypeAdapter(cls).validate_python(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "(the entry)"
            message = f"{label}: field '{field}': {error['msg']}; re-export, or restore the file"
            raise MalformedIndexError(message) from None
        for side in ("input", "output"):
            tensor = getattr(info, side)
            if tensor.quantized and not (
                tensor.scale is not None
                and math.isfinite(tensor.scale)
                and tensor.scale > 0
                and tensor.zero_point is not None
                and np.iinfo(tensor.dtype).min <= tensor.zero_point <= np.iinfo(tensor.dtype).max
            ):
                raise MalformedIndexError(
                    f"{label}: field '{side}': a {tensor.dtype} tensor needs a finite scale above 0 and a zero "
                    f"point within {tensor.dtype}'s range (got scale {tensor.scale}, zero point {tensor.zero_point})"
                )
        size = info.preprocessing.get("size")
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(v, int) and 1 <= v <= MAX_IMAGE_SIDE for v in size)
        ):
            raise MalformedIndexError(
                f"{label}: field 'preprocessing.size' must be [height, width] within 1..{MAX_IMAGE_SIDE}, "
                f"not {str(size)[:40]}"
            )
        norm = info.normalization
        if (
            not all(
                isinstance(norm.get(key), (int, float))
                and not isinstance(norm.get(key), bool)
                and math.isfinite(norm[key])
                for key in ("scale", "offset")
            )
            or not norm["scale"]
        ):
            raise MalformedIndexError(
                f"{label}: field 'normalization' needs finite numbers scale (not 0) and offset, "
                f"not {str(norm)[:60]}; re-export, or restore the file"
            )
        return info


def locate_artifacts(path: Path) -> Path:
    """The artifacts.json for a path to the file itself, to an export folder (or a copied or
    unpacked bundle of one) or to a run directory."""
    path = Path(path)
    for candidate in (path, path / "artifacts.json", path / "export" / "artifacts.json"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no artifacts.json at {path}")


def read_artifacts(path: Path) -> list[ArtifactInfo]:
    """Entries of an artifacts.json (path to the file, to an export folder or to a run directory).
    Raises FileNotFoundError when there is none, EdgeclfError naming the file (and the entry and
    field) when it is too large, not JSON, or an entry is malformed."""
    index = locate_artifacts(path)
    try:
        data = read_json(index, MAX_INDEX_BYTES)
    except BoundedReadError as exc:
        raise MalformedIndexError(f"{exc}; re-export, or restore the file") from None
    entries = data.get("artifacts") if isinstance(data, dict) else None
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise MalformedIndexError(f"{index}: field 'artifacts' must be a list of at most {MAX_ENTRIES} entries")
    return [ArtifactInfo.from_json(entry, f"{index}: artifacts[{i}]") for i, entry in enumerate(entries)]


def artifact_file(path: Path, info: ArtifactInfo) -> Path:
    """An artifact's file: it lies beside artifacts.json, wherever the export folder was copied."""
    return locate_artifacts(path).parent / Path(info.path).name


def pick(entries: list[ArtifactInfo], names: list[str] | None, option: str = "--artifact") -> list[ArtifactInfo]:
    """The entries named in `names`, in index order (all of them when names is empty). Raises
    EdgeclfError naming the option, the unknown names and the choices."""
    if not names:
        return entries
    unknown = sorted(set(names) - {a.name for a in entries})
    if unknown:
        choices = ", ".join(a.name for a in entries) or "(none: run edgeclf export)"
        raise EdgeclfError(f"{option}: {', '.join(unknown)} not in artifacts.json; choose from {choices}")
    return [a for a in entries if a.name in names]
