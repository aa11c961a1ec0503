"""`edgeclf export`: a run's float (and QAT) Keras models -> TFLite and ONNX artifacts, each
validated against its source on the validation split and indexed in RUN_DIR/artifacts.json."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeclf import __version__
from edgeclf.export.errors import ExportError, ValidationFailed
from edgeclf.export.formats import ArtifactSpec, select
from edgeclf.export.validate import Reference, validate
from edgeclf.parity import record_parity, sample_indices
from edgeclf.run import ARTIFACTS, Run
from edgeclf.rundir import atomic_write_json
from edgeclf.runtime.artifact import ARTIFACTS_VERSION, ArtifactInfo, read_artifacts
from edgeclf.runtime.classifier import Classifier


@dataclass
class ExportResult:
    artifacts: list[ArtifactInfo]
    index: Path


def export_run(
    run_dir: Path,
    *,
    int8: bool,
    overrides: dict | None = None,
    option_names: dict | None = None,
    console: Console | None = None,
) -> ExportResult:
    console = console or Console(highlight=False)
    run = Run.open(run_dir)
    cfg = run.config(overrides, option_names)
    specs = select(cfg.export, int8, run.has_qat)
    if cfg.export.int8_source == "qat" and int8 and not run.has_qat:
        raise ExportError(
            f"--int8-source qat: the run {run.path} has no {run.qat_model_path.name}; run edgeclf qat first"
        )
    from edgeclf.models import load_model, load_qat_model

    console.print(f"exporting {', '.join(s.name for s in specs)}")
    model = load_model(run.model_path)
    qat_model = load_qat_model(run.qat_model_path) if any(s.source == "qat" for s in specs) else None
    val_pixels, val_labels, _ = run.images("val")
    ref = Reference(
        val_labels,
        model.predict(val_pixels.astype(np.float32), verbose=0),
        _qat_predict(qat_model, val_pixels, run) if qat_model is not None else None,
    )
    calibration = (
        run.calibration_images(cfg.export.calibration_images, cfg.seed) if any(s.integer for s in specs) else None
    )
    run.export_dir.mkdir(exist_ok=True)

    written: list[ArtifactInfo] = []
    float_onnx: bytes | None = None
    for spec in specs:
        console.print(f"  {spec.name}: converting")
        content, expects, produced_by, source_model = _convert(
            spec, run, cfg, model, qat_model, calibration, float_onnx
        )
        if spec.name == "onnx-fp32":
            float_onnx = content
        info = _describe(spec, run, content, expects, produced_by, source_model)
        content = _embed(spec, run, content, info)
        info.bytes, info.sha256 = len(content), hashlib.sha256(content).hexdigest()
        final = run.path / info.path
        tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
        tmp.write_bytes(content)
        try:
            probs = Classifier(info, tmp).predict_pixels(val_pixels)
            tolerance = cfg.export.fp16_tolerance if spec.precision == "fp16" else cfg.export.fp32_tolerance
            info.validation = validate(spec, probs, ref, tolerance, cfg.export.max_drop)
            info.status = "ok" if info.validation["passed"] else "failed"
            os.replace(tmp, final)  # kept when it fails validation, marked failed in artifacts.json
        finally:
            tmp.unlink(missing_ok=True)
        written.append(info)

    index = _write_index(run, written)
    record_parity(
        run.export_dir,
        val_pixels[sample_indices(val_labels, cfg.export.parity_images)],
        val_pixels[sample_indices(val_labels, cfg.export.parity_spread_images)],
        {"fp32": cfg.export.fp32_tolerance, "fp16": cfg.export.fp16_tolerance},
    )
    print_table(written, ref, console)
    failed = [a for a in written if a.status != "ok"]
    if failed:
        raise ValidationFailed("; ".join(f"{a.name} failed validation: {a.validation['reason']}" for a in failed))
    return ExportResult(written, index)


def _qat_predict(qat_model, pixels: np.ndarray, run: Run) -> np.ndarray:
    norm = run.metadata["normalization"]
    return qat_model.predict(pixels.astype(np.float32) * norm["scale"] + norm["offset"], verbose=0)


def _convert(spec: ArtifactSpec, run: Run, cfg, model, qat_model, calibration, float_onnx):
    """(file content, what the input expects, which converter path produced it, the source model file)."""
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite

    norm = run.metadata["normalization"]
    if spec.format == "tflite":
        if spec.source == "qat":
            # The QAT model starts after `normalize`: it takes normalised values; its uint8 input
            # quantization (scale 1/127.5, zero point 128) absorbs the normalisation.
            source, expects, rep = (
                qat_model,
                "normalized",
                tflite.representative_dataset(calibration, norm["scale"], norm["offset"]),
            )
            source_model, note = run.qat_model_path.name, "tfmot QAT model"
        else:
            source, expects, source_model, note = model, "pixels", run.model_path.name, "float Keras model"
            rep = tflite.representative_dataset(calibration) if calibration is not None else None
        content = tflite.convert(source, spec.precision, rep, cfg.export.int8_input)
        tflite.check_precision(content, spec.precision, cfg.export.int8_input)
        produced_by = f"{tflite.CONVERTER} ({spec.precision}) from the {note}; metadata and labels.txt attached"
        return content, expects, produced_by, source_model
    if spec.integer:
        calib = calibration.astype(np.float32)
        content = onnx_export.quantize_int8(
            float_onnx or onnx_export.convert_float(model, run.image_size, cfg.export.onnx_opset), calib
        )
        produced_by = f"{onnx_export.ORT_QUANT} of the float ONNX"
    else:
        content = onnx_export.convert_float(model, run.image_size, cfg.export.onnx_opset)
        produced_by = f"{onnx_export.TF2ONNX} (opset {cfg.export.onnx_opset}) from the float Keras model"
    return content, "pixels", produced_by, run.model_path.name


def _embed(spec: ArtifactSpec, run: Run, content: bytes, info: ArtifactInfo) -> bytes:
    """Labels, preprocessing and the artifact's own description inside the file, so that a bare
    .tflite/.onnx is self-describing (TFLite metadata + zip; ONNX metadata_props)."""
    from edgeclf.export import onnx as onnx_export
    from edgeclf.export import tflite_metadata
    from edgeclf.runtime.open import DESCRIPTION

    description = json.dumps(
        {k: v for k, v in info.to_json().items() if k not in ("bytes", "sha256", "validation", "status")}
    )
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
        return tflite_metadata.attach(content, metadata, run.classes, {DESCRIPTION: description})
    props = onnx_export.metadata_props(
        run.classes, run.metadata["preprocessing"], run.metadata["normalization"], info.input.expects
    )
    content = onnx_export.add_metadata(content, {**props, "edgeclf.artifact": description})
    onnx_export.check(content, spec.precision)
    return content


def _describe(
    spec: ArtifactSpec, run: Run, content: bytes, expects: str, produced_by: str, source_model: str
) -> ArtifactInfo:
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
        source_model=source_model,
        produced_by=produced_by,
    )


def _write_index(run: Run, written: list[ArtifactInfo]) -> Path:
    """artifacts.json in the export folder: this export's entries replace those of the same name."""
    path = run.export_dir / ARTIFACTS
    kept = [a for a in (read_artifacts(path) if path.is_file() else []) if a.name not in {w.name for w in written}]
    entries = sorted(kept + written, key=lambda a: a.name)
    atomic_write_json(
        path,
        {
            "version": ARTIFACTS_VERSION,
            "edgeclf_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "classes": run.classes,
            "preprocessing": run.metadata["preprocessing"],
            "normalization": run.metadata["normalization"],
            "artifacts": [a.to_json() for a in entries],
        },
    )
    return path


def print_table(artifacts: list[ArtifactInfo], ref: Reference, console: Console) -> None:
    table = Table(title=f"validation split: {len(ref.labels)} images, float Keras accuracy {ref.float_accuracy:.2%}")
    for column in ("artifact", "precision", "size", "accuracy", "Δ pts", "agreement", "check", "status"):
        table.add_column(column, justify="left" if column in ("artifact", "precision", "check", "status") else "right")
    for a in artifacts:
        v = a.validation
        check = f"max|Δp| {v['max_abs_diff']:.1e}" if v["check"] == "max_abs_diff" else f"drop ≤ {v['max_drop']:g}"
        table.add_row(
            a.name,
            a.precision,
            f"{a.bytes / 1024:.0f} KiB",
            f"{v['accuracy']:.2%}",
            f"{-v['drop_points']:+.2f}",
            f"{v['agreement_with_float']:.2%}",
            check,
            "[green]ok[/]" if a.status == "ok" else "[red]FAILED[/]",
        )
    console.print(table)
