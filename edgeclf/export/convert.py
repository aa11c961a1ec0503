"""Step 1 of an export: convert one artifact (a row of the format table) and describe it.

`convert` writes the file (TFLite or ONNX, with labels, preprocessing and its own description
embedded) and returns its ArtifactInfo: I/O dtypes and quantization read back from the file,
size and sha256. Whether the file is any good is step 2 (edgeclf.export.validate).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeclf import __version__
from edgeclf.core.config import ExportConfig
from edgeclf.core.images import normalize
from edgeclf.core.run_directory import Run
from edgeclf.export.formats import ArtifactSpec
from edgeclf.runtime.artifact import ArtifactInfo
from edgeclf.runtime.embedded import DESCRIPTION_FILE, ONNX_DESCRIPTION


@dataclass
class Sources:
    """What the converters start from: the run, its float Keras model, its QAT model (or None),
    calibration images (uint8, or None when nothing is integer), a folder for the models'
    inference SavedModels (made once each, for every TFLite precision: edgeclf.export.tflite) and,
    once made, the float ONNX (the int8 ONNX quantizes it rather than converting again)."""

    run: Run
    model: object
    qat_model: object | None
    calibration: np.ndarray | None
    workdir: Path | None = None  # None: each TFLite conversion starts from the Keras model
    float_onnx: bytes | None = None
    saved: dict[str, Path] = field(default_factory=dict)

    def tflite_source(self, which: str):
        """The float ("float") or QAT ("qat") model as the TFLite converter takes it."""
        model = self.qat_model if which == "qat" else self.model
        if self.workdir is None:
            return model
        if which not in self.saved:
            from edgeclf.export import tflite

            self.saved[which] = tflite.inference_saved_model(model, self.workdir / f"{which}-savedmodel")
        return self.saved[which]


def convert(
    spec: ArtifactSpec, sources: Sources, cfg: ExportConfig, dest: Path, reduce_range: bool = True
) -> ArtifactInfo:
    """Convert spec's source model, embed the metadata, write dest, and describe the file (its
    `path` is where it will live in the run: export/FILENAME). reduce_range: 7-bit weights for the
    int8 ONNX (edgeclf.export.onnx.quantize_int8). Raises ExportError when a converter fails or the
    result is not a valid model file."""
    content, expects, produced_by, source_model = _convert(spec, sources, cfg, reduce_range)
    if spec.name == "onnx-fp32":
        sources.float_onnx = content
    return write_artifact(spec, sources.run, content, expects, dest, produced_by, source_model=source_model)


def write_artifact(
    spec: ArtifactSpec,
    run: Run,
    content: bytes,
    expects: str,
    dest: Path,
    produced_by: str,
    record: dict | None = None,
    source_model: str | None = None,
) -> ArtifactInfo:
    """A converted file described (I/O read back from it), its metadata embedded, written at dest.
    record: how an int8-mixed file was made (edgeclf.export.repair), recorded in the entry and the file."""
    info = describe(spec, run, content, expects)
    info.produced_by, info.source_model = produced_by, source_model or run.model_path.name
    info.repair_record = record or {}
    content = _embed(spec, run, content, info)
    info.bytes, info.sha256 = len(content), hashlib.sha256(content).hexdigest()
    Path(dest).write_bytes(content)
    return info


def enter_shared(spec: ArtifactSpec, run: Run, file: Path) -> ArtifactInfo:
    """An artifact that runs another artifact's file (spec.shares, already written at `file`) on
    another engine: described from that file, nothing written."""
    content = Path(file).read_bytes()
    info = describe(spec, run, content, "pixels")
    hint = "bf16" if spec.precision == "bf16" else "f32"
    info.produced_by = f"the {spec.shares} file, run on {spec.engine} (inference precision {hint})"
    info.source_model = run.model_path.name
    info.bytes, info.sha256 = len(content), hashlib.sha256(content).hexdigest()
    return info


def describe(spec: ArtifactSpec, run: Run, content: bytes, expects: str) -> ArtifactInfo:
    """The artifact's entry for artifacts.json, its input and output read from the model itself."""
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite

    inp, out = (tflite if spec.format == "tflite" else onnx_export).io_info(content, expects)
    return ArtifactInfo(
        name=spec.name,
        format=spec.format,
        precision=spec.precision,
        path=f"{run.export_dir.name}/{spec.filename}",
        input=inp,
        output=out,
        labels=run.classes,
        preprocessing=run.metadata["preprocessing"],
        normalization=run.metadata["normalization"],
        engine=spec.engine,
    )


def _convert(
    spec: ArtifactSpec, sources: Sources, cfg: ExportConfig, reduce_range: bool
) -> tuple[bytes, str, str, str]:
    """(file content, what the input expects, which converter path produced it, the source model file)."""
    if spec.format == "tflite":
        return _convert_tflite(spec, sources, cfg)
    from edgeclf.export import onnx as onnx_export

    run = sources.run
    if spec.integer:
        float_onnx = sources.float_onnx or onnx_export.convert_float(sources.model, run.image_size, cfg.onnx_opset)
        if spec.engine == "openvino":  # NNCF, OpenVINO's quantizer
            content = onnx_export.quantize_nncf(float_onnx, sources.calibration.astype(np.float32))
            produced_by = f"{onnx_export.nncf_quant()} of the float ONNX"
        else:
            content = onnx_export.quantize_int8(float_onnx, sources.calibration.astype(np.float32), reduce_range)
            produced_by = f"{onnx_export.ort_quant(reduce_range)} of the float ONNX"
    else:
        content = onnx_export.convert_float(sources.model, run.image_size, cfg.onnx_opset)
        produced_by = f"{onnx_export.TF2ONNX} (opset {cfg.onnx_opset}) from the float Keras model"
    onnx_export.check_model(content, spec.precision)
    return content, "pixels", produced_by, run.model_path.name


def _convert_tflite(spec: ArtifactSpec, sources: Sources, cfg: ExportConfig) -> tuple[bytes, str, str, str]:
    from edgeclf.export import tflite

    run, calibration = sources.run, sources.calibration
    if spec.source == "qat":
        # The QAT model starts after `normalize`: it takes normalised values; its uint8 input
        # quantization (scale 1/127.5, zero point 128) absorbs the normalisation.
        norm = run.metadata["normalization"]
        source, expects = sources.tflite_source("qat"), "normalized"
        representative = tflite.representative_dataset(normalize(calibration, norm))
        source_model, note = run.qat_model_path.name, "tfmot QAT model"
    else:
        source, expects, source_model, note = (
            sources.tflite_source("float"),
            "pixels",
            run.model_path.name,
            "float Keras model",
        )
        representative = tflite.representative_dataset(calibration) if calibration is not None else None
    content = tflite.convert(source, spec.precision, representative, cfg.int8_input)
    produced_by = (
        f"{tflite.CONVERTER} ({spec.precision}) of the {note}'s inference function; metadata and labels.txt attached"
    )
    return content, expects, produced_by, source_model


def _embed(spec: ArtifactSpec, run: Run, content: bytes, info: ArtifactInfo) -> bytes:
    """Labels, preprocessing and the artifact's own description inside the file, so that a bare
    .tflite/.onnx is self-describing (TFLite metadata + zip; ONNX metadata_props)."""
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite_metadata

    fields = info.to_json()
    description = json.dumps({k: v for k, v in fields.items() if k not in ("bytes", "sha256", "validation", "status")})
    if spec.format == "tflite":
        float_input = not spec.integer
        mean, std = ([0.0], [1.0]) if (float_input or info.input.expects == "pixels") else ([127.5], [127.5])
        metadata = tflite_metadata.build_metadata(
            name=f"edgeclf {run.metadata['model']['name']} {spec.precision}",
            description=f"Image classifier ({len(run.classes)} classes) exported by edgeclf {__version__}",
            image_size=(run.image_size, run.image_size),
            mean=mean,
            std=std,
            version=__version__,
        )
        return tflite_metadata.attach(content, metadata, run.classes, {DESCRIPTION_FILE: description})
    props = onnx_export.metadata_props(
        run.classes, run.metadata["preprocessing"], run.metadata["normalization"], info.input.expects
    )
    return onnx_export.add_metadata(content, {**props, ONNX_DESCRIPTION: description})
