"""Open a classifier from what the user points at: a run directory (by artifact name), an export
folder with artifacts.json, or a bare .tflite/.onnx that carries its own description."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from edgeclf.errors import EdgeclfError
from edgeclf.runtime.artifact import ArtifactInfo, artifact_file, read_artifacts
from edgeclf.runtime.classifier import Classifier

DESCRIPTION = "edgeclf.json"  # inside a .tflite's appended zip, beside labels.txt


class ArtifactNotFound(EdgeclfError):
    """The requested artifact or model file is not there; the message says what is."""


def default_artifact(entries: list[ArtifactInfo]) -> ArtifactInfo:
    """The best validated int8 artifact (highest validation accuracy, TFLite first on ties), else fp32."""
    ok = [a for a in entries if a.status == "ok"]
    int8 = [a for a in ok if a.precision.startswith("int8")]
    pool = int8 or [a for a in ok if a.precision == "fp32"] or ok
    if not pool:
        raise ArtifactNotFound("no validated artifact; run edgeclf export first")
    return max(pool, key=lambda a: (a.validation.get("accuracy", 0.0), a.format == "tflite"))


def open_classifier(
    target: Path, artifact: str | None = None, threads: int | None = None, kernels: str = "fast", warm_up: bool = True
) -> Classifier:
    """A classifier for what the user points at (see the module docstring), warmed up by one
    untimed inference unless warm_up is False. Raises ArtifactNotFound or EdgeclfError."""
    classifier = _open(Path(target), artifact, threads, kernels)
    if warm_up:
        classifier.warm_up()
    return classifier


def _open(target: Path, artifact: str | None, threads: int | None, kernels: str) -> Classifier:
    if target.is_file() and target.suffix in (".tflite", ".onnx"):
        return Classifier(describe_file(target), target, threads, kernels=kernels)
    if not target.exists():
        raise ArtifactNotFound(f"{target} does not exist")
    try:
        entries = read_artifacts(target)
    except FileNotFoundError:
        raise ArtifactNotFound(
            f"{target}: no artifacts.json (run edgeclf export) and not a .tflite/.onnx file"
        ) from None
    if artifact is None:
        info = default_artifact(entries)
    else:
        by_name = {a.name: a for a in entries}
        if artifact not in by_name:
            raise ArtifactNotFound(
                f"--artifact {artifact}: not in artifacts.json; choose one of {', '.join(sorted(by_name))}"
            )
        info = by_name[artifact]
    return Classifier(info, artifact_file(target, info), threads, kernels=kernels)


def describe_file(path: Path) -> ArtifactInfo:
    """The ArtifactInfo a bare model file carries: edgeclf.json in a .tflite's zip, or an ONNX's
    metadata_props; labels.txt beside the file fills in labels when the file has none."""
    content = path.read_bytes()
    data = None
    if path.suffix == ".tflite":
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                data = json.loads(archive.read(DESCRIPTION))
        except (zipfile.BadZipFile, KeyError):
            data = None
    else:
        import onnxruntime as ort

        props = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        if "edgeclf.artifact" in props:
            data = json.loads(props["edgeclf.artifact"])
    if data is None:
        raise ArtifactNotFound(
            f"{path}: carries no edgeclf description; use the export folder (artifacts.json) instead"
        )
    beside = path.with_name("labels.txt")
    if not data.get("labels") and beside.is_file():
        data["labels"] = beside.read_text(encoding="utf-8").splitlines()
    data["path"] = path.name
    return ArtifactInfo.from_json(data)
