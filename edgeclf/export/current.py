"""Whether a run's export is current: what `export_run` would make now is what RUN_DIR/export holds.

artifacts.json records what its export was made from (`made_from`: the sha256 of model.keras and of
qat_model.h5, the export settings, the seed that picks calibration and gate images, whether int8
was asked for). The export is current when those are unchanged and every validated file still has
the sha256 it was indexed with; then `edgeclf export --bundle` packs it instead of converting and
validating every artifact again. Anything else (no export, one made before this record existed, a
retrained model, other settings, an edited or missing file) is a reason to convert, given in words.
A failed artifact is not one (the same inputs fail the same way; the bundle holds the validated
files only).
"""

from __future__ import annotations

from pathlib import Path

from edgeclf.core.bounded import BoundedReadError, read_json
from edgeclf.core.config import Config
from edgeclf.core.run_directory import ARTIFACTS, Run
from edgeclf.runtime.artifact import MAX_INDEX_BYTES, artifact_file, read_artifacts
from edgeclf.runtime.integrity import file_sha256


def made_from(run: Run, cfg: Config, int8: bool) -> dict:
    """What an export of `run` with these settings is made from (recorded in artifacts.json)."""
    models = {run.model_path.name: file_sha256(run.model_path)}
    if run.has_qat:
        models[run.qat_model_path.name] = file_sha256(run.qat_model_path)
    return {"models": models, "export": cfg.export.model_dump(mode="json"), "seed": cfg.seed, "int8": int8}


def recorded_made_from(index: Path) -> dict | None:
    """The made_from an artifacts.json records (None: none). Raises BoundedReadError for a file that
    is not bounded JSON, AttributeError for one that is not an object."""
    recorded = read_json(index, MAX_INDEX_BYTES).get("made_from")
    return recorded if isinstance(recorded, dict) else None


def stale_reason(run: Run, cfg: Config, int8: bool) -> str | None:
    """None when the run's export is current for these settings; else why it is not, in words."""
    index = run.export_dir / ARTIFACTS
    if not index.is_file():
        return "the run has no export yet"
    try:
        recorded = recorded_made_from(index)
    except (BoundedReadError, AttributeError):
        return f"{index} is not readable"
    if recorded is None:
        return "the export was made by an edgeclf that did not record what it was made from"
    now = made_from(run, cfg, int8)
    for name in sorted(set(now["models"]) | set(recorded.get("models") or {})):
        if now["models"].get(name) != (recorded.get("models") or {}).get(name):
            return f"{name} changed since the export"
    if recorded.get("int8") != int8:
        return "int8 artifacts were " + ("not asked for then" if int8 else "asked for then, not now")
    if recorded.get("export") != now["export"] or recorded.get("seed") != now["seed"]:
        return "the export settings differ from those it was made with"
    return _files_reason(index)


def _files_reason(index: Path) -> str | None:
    entries = read_artifacts(index)
    for entry in entries:  # a failed artifact stays failed when converted again: it is not a reason
        file = artifact_file(index, entry)
        if not file.is_file():
            return f"{file.name} is missing"
        if file.stat().st_size != entry.bytes or file_sha256(file) != entry.sha256:
            return f"{file.name} changed since the export"
    return None if entries else "the export lists no artifacts"
