"""The settings of a device command (predict, watch, serve): configs/default.yaml, then the run's
config.yaml when MODEL is a run directory or the export folder of one, then the command line. A
run trained with `--config` that sets predict.top_k or serve.timeout is served that way without
repeating them; a bare .tflite/.onnx or an unpacked bundle has no run, so the defaults apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeclf.core.config import Config, load_config
from edgeclf.core.run_directory import CONFIG, EXPORT_DIR, METADATA


def run_config(model: Path) -> Path | None:
    """The config.yaml of the run MODEL names (the run directory or its export folder), else None."""
    model = Path(model)
    if not model.is_dir():
        return None
    for folder in (model, model.parent) if model.name == EXPORT_DIR else (model,):
        if (folder / CONFIG).is_file() and (folder / METADATA).is_file():
            return folder / CONFIG
    return None


def device_settings(model: Path, overrides: dict[str, Any], option_names: dict[str, str]) -> Config:
    """The resolved configuration for a device command on MODEL, command-line values on top."""
    found = run_config(model)
    return load_config([found] if found else [], overrides, option_names)
