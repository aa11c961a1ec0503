"""Open a classifier from what the user points at: a run directory (by artifact name), an export
folder with artifacts.json, or a bare .tflite/.onnx that carries its own description."""

from __future__ import annotations

from pathlib import Path

from edgeclf.core.precision import Precision
from edgeclf.runtime.artifact import ArtifactInfo, artifact_file, locate_artifacts, read_artifacts
from edgeclf.runtime.backends import engine_available, engine_of
from edgeclf.runtime.classifier import Classifier
from edgeclf.runtime.embedded import ArtifactNotFound, describe_file
from edgeclf.runtime.integrity import check_recorded

__all__ = ["ArtifactNotFound", "default_artifact", "describe_file", "open_classifier"]


def default_artifact(entries: list[ArtifactInfo]) -> ArtifactInfo:
    """The best validated int8 artifact whose engine is installed here (highest validation
    accuracy, TFLite first on ties), else fp32."""
    ok = [a for a in entries if a.status == "ok" and engine_available(engine_of(a))]
    int8 = [a for a in ok if a.precision.is_integer]
    pool = int8 or [a for a in ok if a.precision is Precision.FP32] or ok
    if not pool:
        raise ArtifactNotFound("no validated artifact; run edgeclf export first")
    return max(pool, key=lambda a: (a.validation.get("accuracy", 0.0), a.format == "tflite"))


def open_classifier(
    target: Path,
    artifact: str | None = None,
    threads: int | None = None,
    kernels: str = "fast",
    warm_up: bool = True,
    engine: str | None = None,
    integrity: bool = True,
) -> Classifier:
    """A classifier for what the user points at (see the module docstring), warmed up by one
    untimed inference unless warm_up is False; `engine` overrides the recorded engine of an ONNX
    artifact. An artifact from an artifacts.json must have the size and sha256 recorded there
    unless integrity is False. Raises ArtifactNotFound or EdgeclfError."""
    classifier = _open(Path(target), artifact, threads, kernels, engine, integrity)
    if warm_up:
        classifier.warm_up()
    return classifier


def _open(target: Path, artifact, threads, kernels: str, engine: str | None, integrity: bool) -> Classifier:
    if target.is_file() and target.suffix in (".tflite", ".onnx"):
        return Classifier(describe_file(target), target, threads, kernels=kernels, engine=engine)
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
    index = locate_artifacts(target)
    file = artifact_file(index, info)
    if file.is_symlink() and index.parent.resolve() not in file.resolve().parents:
        raise ArtifactNotFound(f"{file}: a link to {file.resolve()}, outside the export folder; refused")
    if not file.is_file():
        raise ArtifactNotFound(f"{file}: listed in {index} but missing; copy the whole export folder")
    if integrity:
        check_recorded(file, info.bytes, info.sha256, index)
    return Classifier(info, file, threads, kernels=kernels, engine=engine)
