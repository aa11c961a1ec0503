"""`edgeclf export` (the stage): a run's float (and QAT) Keras models -> TFLite and ONNX artifacts, each
validated against its source on the validation split and indexed in RUN_DIR/export/artifacts.json.

Two public steps, as Hugging Face Optimum's exporters have them: `convert` (edgeclf.export.convert:
write the file and describe it) and `validate` (edgeclf.export.validate: run it against the float
model and return a typed verdict). `export_run` does both for every artifact the format table
selects; `revalidate_run` does the second again for files already there (after copying or editing
one). An artifact that fails is kept on disk, marked "failed" in artifacts.json, and raised as the
typed error of its verdict once the index is written. Progress is logged to `edgeclf.export`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgeclf import __version__
from edgeclf.core.atomic import atomic_write_json, replacing
from edgeclf.core.config import Config
from edgeclf.core.run_directory import ARTIFACTS, Run
from edgeclf.core.timings import Timings
from edgeclf.export.convert import Sources, convert, describe, enter_shared
from edgeclf.export.current import made_from, recorded_made_from
from edgeclf.export.errors import ExportError, ValidationFailed
from edgeclf.export.formats import ArtifactSpec, repairs_for, select, spec_named
from edgeclf.export.model_card import write_model_card
from edgeclf.export.repair import repair_artifact
from edgeclf.export.validate import FAILURES, Reference, Verdict, validate
from edgeclf.runtime.artifact import ARTIFACTS_VERSION, ArtifactInfo, artifact_file, pick, read_artifacts
from edgeclf.runtime.parity import record_parity, sample_indices

log = logging.getLogger(__name__)

__all__ = ["ExportResult", "convert", "export_run", "revalidate_run", "validate"]


@dataclass
class ExportResult:
    """The artifacts written (or re-validated), with their verdicts in .validation and .status,
    the index that lists them, and the reference they were judged against."""

    artifacts: list[ArtifactInfo]
    index: Path
    images: int  # validation images
    float_accuracy: float
    changed: list[str] = field(default_factory=list)  # re-validation: files that differ from the export's
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    @property
    def failed(self) -> list[ArtifactInfo]:
        return [a for a in self.artifacts if a.status != "ok"]


def export_run(
    run_dir: Path, *, int8: bool, overrides: dict | None = None, option_names: dict | None = None
) -> ExportResult:
    """Convert and validate every artifact the format table selects for this run (float ones
    always, int8 ones with int8=True), write artifacts.json and the parity samples. overrides:
    dotted export.* config keys from the command line, option_names: how the user typed them.
    Raises ExportError when a conversion fails, and the verdict's ValidationFailed subclass (with
    .result set) when an artifact fails validation."""
    run = Run.open(run_dir)
    cfg = run.config(overrides, option_names)
    specs = _runnable(select(cfg.export, int8, run.has_qat))
    if cfg.export.int8_source == "qat" and int8 and not run.has_qat:
        raise ExportError(
            f"--int8-source qat: the run {run.path} has no {run.qat_model_path.name}; run edgeclf qat first"
        )
    log.info(f"exporting {', '.join(s.name for s in specs)}")
    timings = Timings()
    with timings.step("inputs: models' sha256"):
        made = made_from(run, cfg, int8)  # before converting: what these files are made from
    with timings.step("load models (and import TensorFlow, the first time)"):
        model, qat_model = _load_models(run, need_qat=any(s.source == "qat" for s in specs))
    with timings.step("reference: float answers on the validation and gate images"):
        reference = Reference.compute(run, model, qat_model, _gate_limits(cfg, specs), cfg.seed)
    with reference:
        with timings.step("calibration images"):
            calibration = (
                run.calibration_images(cfg.export.calibration_images, cfg.seed)
                if any(s.integer for s in specs)
                else None
            )
        run.export_dir.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="edgeclf-export-") as workdir:
            sources = Sources(run, model, qat_model, calibration, Path(workdir))
            written = [_export_one(spec, run, sources, cfg, reference, timings) for spec in specs]
            if int8 and cfg.export.repair:
                written += _repair_failed(run, sources, cfg, reference, written, timings)
        return _finish(run, cfg, written, reference, inputs=made, timings=timings, fresh=True)


def _export_one(
    spec: ArtifactSpec,
    run: Run,
    sources: Sources,
    cfg: Config,
    reference: Reference,
    timings,
    record: dict | None = None,
):
    """One artifact converted (or entered, when it shares another's file: `record` is that file's
    repair record when it is a repaired one) and validated, each step timed."""
    dest = run.path / run.export_dir.name / spec.filename
    if spec.shares:  # the same file on another engine
        log.info(f"  {spec.name}: validating {spec.filename} on {spec.engine}")
        info = enter_shared(spec, run, run.export_dir / spec.filename)
        info.repair_record = record or {}
        with timings.step(f"{spec.name}: validate"):
            _record(info, validate(info, run.export_dir / spec.filename, reference, cfg.export))
        return info
    if spec.name == "onnx-int8-ptq" and cfg.export.onnx_reduce_range == "auto":
        log.info(f"  {spec.name}: converting with 7-bit and 8-bit weights, validating both")
        with replacing(dest) as tmp:
            return _more_faithful_onnx_int8(spec, sources, cfg.export, reference, tmp, timings)
    log.info(f"  {spec.name}: converting and validating")
    with replacing(dest) as tmp:
        with timings.step(f"{spec.name}: convert"):
            info = convert(spec, sources, cfg.export, tmp, cfg.export.onnx_reduce_range != "false")
        with timings.step(f"{spec.name}: validate"):
            _record(info, validate(info, tmp, reference, cfg.export))  # kept when it fails, marked failed
    return info


def _repair_failed(
    run: Run, sources: Sources, cfg: Config, reference: Reference, written: list[ArtifactInfo], timings
) -> list[ArtifactInfo]:
    """The int8-mixed artifacts that repair the int8 ones that failed (edgeclf.export.repair)."""
    failed = [a for a in written if a.status != "ok" and a.precision.is_integer]
    made: dict[str, ArtifactInfo] = {}
    for spec in _runnable(repairs_for([a.name for a in failed], cfg.export)):
        if spec.shares:
            made[spec.name] = _export_one(spec, run, sources, cfg, reference, timings, made[spec.shares].repair_record)
            continue
        repaired = [a for a in failed if a.name in spec.repairs]
        log.info(f"  {spec.name}: repairing {', '.join(a.name for a in repaired)}: keeping its worst layers in float")
        with replacing(run.export_dir / spec.filename) as tmp:
            made[spec.name] = repair_artifact(spec, repaired, sources, cfg.export, reference, tmp, timings)
    return list(made.values())


def _mark_repaired(artifacts: list[ArtifactInfo], index: list[ArtifactInfo]) -> None:
    """A failed int8 artifact that a passing int8-mixed one repairs says so (validation.repaired_by):
    the export then succeeds, the failed file staying in the index as failed."""
    repairs: dict[str, str] = {}
    for entry in [*artifacts, *index]:
        if entry.status != "ok" or not entry.precision.is_mixed:
            continue
        for name in entry.repair_record.get("repairs", []):  # a repair on the failed file's own engine first
            if name not in repairs or _group(name) == _group(entry.name):
                repairs[name] = entry.name
    for a in artifacts:
        a.validation.pop("repaired_by", None)
        if a.status != "ok" and a.name in repairs:
            a.validation["repaired_by"] = repairs[a.name]


def _drop_old_repairs(run: Run, earlier: list[ArtifactInfo], artifacts: list[ArtifactInfo]) -> set[str]:
    """An earlier export's int8-mixed files that this export did not make again: removed (they
    repaired files that have just been replaced); returns their names, for the index to drop."""
    made = {a.name for a in artifacts}
    old = {e.name: e for e in earlier if e.precision.is_mixed and e.name not in made}
    for entry in old.values():
        if not spec_named(entry.name).shares:
            (run.path / entry.path).unlink(missing_ok=True)
    return set(old)


def _group(name: str) -> str | None:
    """The format table's group of an artifact name (None for a name it does not have)."""
    try:
        return spec_named(name).group
    except KeyError:
        return None


def _gate_limits(cfg: Config, specs: list[ArtifactSpec]):
    """The export limits when some artifact goes through a quantization gate (which needs the
    extra training images), else None (the validation split alone is decoded)."""
    return cfg.export if any(spec.check == "accuracy" or spec.precision == "bf16" for spec in specs) else None


def _more_faithful_onnx_int8(
    spec: ArtifactSpec, sources: Sources, limits, reference: Reference, dest: Path, timings: Timings
):
    """The int8 ONNX with 7-bit (reduce_range) and with 8-bit weights, each validated; the one that
    agrees with the float model on more of the gate's images is written to dest (a tie keeps 7-bit,
    which is safe on x86 CPUs without VNNI). Both are recorded in the verdict's `candidates`."""
    made = []
    try:
        for reduce_range in (True, False):
            file = dest.with_name(f"{dest.stem}-rr{int(reduce_range)}{dest.suffix}")
            with timings.step(f"{spec.name}: convert"):
                info = convert(spec, sources, limits, file, reduce_range)
            with timings.step(f"{spec.name}: validate"):
                verdict = validate(info, file, reference, limits)
            made.append((reduce_range, file, info, verdict))
        chosen = max(made, key=lambda m: (m[3].passed, m[3].gate_agreement or 0.0, m[0]))
        reduce_range, file, info, verdict = chosen
        os.replace(file, dest)
        _record(info, verdict)
        info.validation["candidates"] = [
            {
                "reduce_range": rr,
                "gate_agreement_with_float": v.gate_agreement,
                "decision": v.decision,
                "drop_points": v.drop_points,
                "agreement_with_float": v.agreement_with_float,
                "chosen": rr == reduce_range,
            }
            for rr, _, _, v in made
        ]
        log.info(
            f"  {spec.name}: kept {'7' if reduce_range else '8'}-bit weights (agreement with float on the gate's "
            "images: "
            + ", ".join(f"{'7' if rr else '8'}-bit {v.gate_agreement or 0.0:.2%}" for rr, _, _, v in made)
            + ")"
        )  # a candidate that failed before running (not integer, wrong output) has no agreement: 0
        return info
    finally:
        for _, file, _, _ in made:
            file.unlink(missing_ok=True)


def _runnable(specs: list[ArtifactSpec]) -> list[ArtifactSpec]:
    """The selected artifacts whose engine can run here: OpenVINO ones only where OpenVINO is
    installed, bf16 only where the CPU has native bf16 (each skip logged once)."""
    from edgeclf.runtime.backends import engine_available, native_bf16

    kept = specs
    if any(s.engine == "openvino" for s in kept) and not engine_available("openvino"):
        log.info("  openvino-*: skipped, OpenVINO is not installed (pip install 'edgeclf[openvino]')")
        kept = [s for s in kept if s.engine != "openvino"]
    if any(s.name == "openvino-int8-nncf" for s in kept) and importlib.util.find_spec("nncf") is None:
        log.info("  openvino-int8-nncf: skipped, NNCF is not installed (pip install 'edgeclf[openvino]')")
        kept = [s for s in kept if s.name != "openvino-int8-nncf"]
    if any(s.precision == "bf16" for s in kept) and not native_bf16():
        log.info("  openvino-bf16: skipped, OpenVINO reports no native bf16 on this CPU")
        kept = [s for s in kept if s.precision != "bf16"]
    return kept


def revalidate_run(
    run_dir: Path, names: list[str] | None = None, *, overrides: dict | None = None, option_names: dict | None = None
) -> ExportResult:
    """Validate the artifacts already in the run's export folder again (all, or `names`), as they
    are on disk now: each entry's size, sha256 and I/O description are read from its file, its
    verdict replaces the old one, and the parity samples are recorded again. Raises ExportError
    for a missing export or file, and ValidationFailed as export_run does."""
    run = Run.open(run_dir)
    cfg = run.config(overrides, option_names)
    index = run.export_dir / ARTIFACTS
    if not index.is_file():
        raise ExportError(f"{index}: not found; run edgeclf export {run.path} first")
    entries = read_artifacts(index)
    chosen = pick(entries, names)
    model, qat_model = _load_models(run, need_qat=any(spec_named(a.name).source == "qat" for a in chosen))
    with Reference.compute(
        run, model, qat_model, _gate_limits(cfg, [spec_named(a.name) for a in chosen]), cfg.seed
    ) as reference:
        checked, changed = [], []
        for old in chosen:
            file = artifact_file(index, old)
            if not file.is_file():
                raise ExportError(f"{file}: missing; re-export with edgeclf export {run.path}")
            content = file.read_bytes()
            info = describe(spec_named(old.name), run, content, old.input.expects)
            info.produced_by, info.source_model, info.repair_record = (
                old.produced_by,
                old.source_model,
                old.repair_record,
            )
            info.bytes, info.sha256 = len(content), hashlib.sha256(content).hexdigest()
            if info.sha256 != old.sha256:
                changed.append(old.name)
                log.warning(
                    f"{old.name}: {file.name} differs from the exported file (sha256); validating it as it is now"
                )
            limits = (
                cfg.export.model_copy(update={"int8_input": old.input.dtype})
                if info.precision.is_integer
                else cfg.export
            )
            log.info(f"  {info.name}: validating")
            _record(info, validate(info, file, reference, limits))
            checked.append(info)
        # a file edited since the export no longer comes from the recorded models: its record is dropped
        inputs = None if changed else recorded_made_from(index)
        return _finish(run, cfg, checked, reference, changed, inputs=inputs)


def _load_models(run: Run, need_qat: bool):
    from edgeclf.training.models import load_model, load_qat_model

    model = load_model(run.model_path)
    return model, (load_qat_model(run.qat_model_path) if need_qat and run.has_qat else None)


def _record(info: ArtifactInfo, verdict: Verdict) -> None:
    info.validation = verdict.to_json()
    info.status = "ok" if verdict.passed else "failed"


def _finish(
    run: Run,
    cfg: Config,
    artifacts: list[ArtifactInfo],
    reference: Reference,
    changed: list[str] | None = None,
    inputs: dict | None = None,
    timings: Timings | None = None,
    fresh: bool = False,
) -> ExportResult:
    """Write the parity samples and the index (with `inputs`, what the files were made from, and
    the steps' timings); raise for failed artifacts (after both are written). fresh: a new export,
    whose repairs replace every earlier one (a re-validation keeps the index's repairs)."""
    timings = timings or Timings()
    labels = reference.labels
    index = run.export_dir / ARTIFACTS
    earlier = read_artifacts(index) if index.is_file() else []
    dropped = _drop_old_repairs(run, earlier, artifacts) if fresh else set()
    _mark_repaired(artifacts, [] if fresh else earlier)
    # first: the parity outputs are of the indexed files
    _write_index(run, artifacts, inputs, timings.to_json(), dropped)
    with timings.step("parity: reference outputs and the kernels' spread"):
        record_parity(
            run.export_dir,
            reference.split.take(sample_indices(labels, cfg.export.parity_images)),
            reference.split.take(sample_indices(labels, cfg.export.parity_spread_images)),
            {"fp32": cfg.export.fp32_tolerance, "fp16": cfg.export.fp16_tolerance, "bf16": cfg.export.bf16_tolerance},
        )
    index = _write_index(run, artifacts, inputs, timings.to_json(), dropped)  # again, with the parity step's time
    write_model_card(run)
    result = ExportResult(artifacts, index, len(labels), reference.float_accuracy, changed or [], timings.to_json())
    _raise_failures(result)
    return result


def _raise_failures(result: ExportResult) -> None:
    """Failures of one kind: that kind's typed error; of several kinds: ValidationFailed. The message
    names every failed artifact; the error carries the result (for the CLI's table)."""
    failed = [a for a in result.failed if not a.validation.get("repaired_by")]
    if not failed:
        return
    message = "; ".join(f"{a.name} failed validation: {a.validation['reason']}" for a in failed)
    kinds = {a.validation["failure"] for a in failed}
    error = FAILURES[kinds.pop()](message) if len(kinds) == 1 else ValidationFailed(message)
    error.result = result
    raise error


def _write_index(
    run: Run, written: list[ArtifactInfo], made: dict | None, timings: dict[str, float], drop: set[str] = frozenset()
) -> Path:
    """artifacts.json in the export folder: these entries replace those of the same name, those
    named in drop go; `made` is what they were made from (edgeclf.export.current)."""
    path = run.export_dir / ARTIFACTS
    gone = {w.name for w in written} | set(drop)
    kept = [a for a in (read_artifacts(path) if path.is_file() else []) if a.name not in gone]
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
            "made_from": made,
            "timings": timings,
            "artifacts": [a.to_json() for a in entries],
        },
    )
    return path
