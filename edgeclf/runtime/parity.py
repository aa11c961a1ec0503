"""Device parity: the exporting machine records each artifact's raw outputs on a few sample images
(export/parity/), and `edgeclf verify` re-runs them on any machine and applies one rule.

The rule (RULE below, the one the arm64 check established) is recorded in every reference.json.

TensorFlow-free: verify runs on the device.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from edgeclf import __version__
from edgeclf.core.atomic import atomic_write_bytes, atomic_write_json
from edgeclf.core.bounded import BoundedReadError, expect_object, read_json, shorten
from edgeclf.core.errors import EdgeclfError, IntegrityError, MalformedIndexError
from edgeclf.core.images import ImageError, load_image
from edgeclf.runtime.artifact import ArtifactInfo, artifact_file, locate_artifacts, pick, read_artifacts
from edgeclf.runtime.backends import engine_available, engine_of
from edgeclf.runtime.classifier import Classifier
from edgeclf.runtime.machine import fingerprint, inference_threads

# The rule verify applies, as data: written into every reference.json. It used to be cut out of this
# module's docstring at run time (editing the prose changed every export; under python -OO export crashed).
RULE = """\
- every file must have the size and sha256 that artifacts.json records (else: changed since export);
- float artifacts (fp32, fp16, dynamic-range): max |difference| from the recorded outputs within the
  export's tolerance (fp32_tolerance for fp32, bf16_tolerance for bf16, fp16_tolerance otherwise);
- an int8 TFLite on LiteRT's reference kernels: the raw outputs bit-identical to the recorded ones
  (those kernels' integer arithmetic is specified to the bit on every CPU);
- an int8 TFLite on the fast kernels (XNNPACK), which round their requantization in ISA-specific
  ways: a sample may change class only if it is a near-tie, i.e. the reference output's top-1 beats
  its runner-up by at most 2 x D quantization steps, where D is the largest difference between the
  exporting machine's own fast and reference kernels on any output (measured at export on up to
  parity_spread_images validation images). Each fast engine may move an output by about D from
  the portable reference, so two of them can swap the top two classes only within 2 x D; a class
  change on a confident image is a real difference;
- an int8 ONNX model (on ONNX Runtime or OpenVINO): neither has reference kernels, so every top-1
  must hold."""
PARITY_DIR = "parity"
REFERENCE = "reference.json"
VERSION = 1
RECORDED_THREADS = 1  # the reference outputs are computed with one thread; verify uses as many unless told
MAX_SAMPLES = 64
MAX_REFERENCE_BYTES = 32 * 1024 * 1024  # refused before it is read


def sample_indices(labels: np.ndarray, count: int) -> list[int]:
    """count indices spread over the classes: round-robin, each class's images in their order."""
    per_class = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(count, len(labels)):
        for queue in per_class:
            if queue and len(chosen) < count:
                chosen.append(int(queue.pop(0)))
    return sorted(chosen)


def _raw_outputs(classifier: Classifier, pixels: np.ndarray) -> np.ndarray:
    """Raw outputs, one image at a time (batch 1 on both machines: no batch-dependent kernels)."""
    return np.concatenate([classifier.backend.run(classifier.prepare(pixels[i : i + 1])) for i in range(len(pixels))])


def _kernel_sets(info: ArtifactInfo) -> tuple[str, ...]:
    return ("fast", "reference") if info.format == "tflite" and info.precision.is_integer else ("fast",)


def record_parity(export_dir: Path, samples: np.ndarray, spread: np.ndarray, tolerances: dict[str, float]) -> Path:
    """Write export_dir/parity/: the sample images (PNG at the input size, so that decoding them
    gives back the same pixels) and reference.json with every validated artifact's raw outputs on
    them, per kernel set, and for int8 TFLite files how their fast and reference kernels differ on
    the `spread` images (top-1 disagreements, largest gap in quantization steps)."""
    index = locate_artifacts(export_dir)
    folder = index.parent / PARITY_DIR
    shutil.rmtree(folder / "samples", ignore_errors=True)  # a re-export with fewer samples leaves none behind
    (folder / "samples").mkdir(parents=True)
    names = []
    for i, image in enumerate(samples):
        buf = _png(image)
        name = f"samples/{i:03d}.png"
        atomic_write_bytes(folder / name, buf)
        names.append({"file": name, "sha256": hashlib.sha256(buf).hexdigest()})
    records = {}
    for info in (a for a in read_artifacts(index) if a.status == "ok"):
        engines = {
            k: Classifier(info, artifact_file(index, info), threads=RECORDED_THREADS, kernels=k)
            for k in _kernel_sets(info)
        }
        record = {
            "sha256": info.sha256,
            "dtype": info.output.dtype,
            "outputs": {k: _raw_outputs(c, samples).tolist() for k, c in engines.items()},
        }
        if len(engines) == 2 and len(spread):
            fast, ref = (_raw_outputs(c, spread).astype(np.int64) for c in engines.values())
            record["kernel_spread"] = {
                "images": int(len(spread)),
                "top1_disagreements": int((fast.argmax(1) != ref.argmax(1)).sum()),
                "max_steps": int(np.abs(fast - ref).max()),
            }
        records[info.name] = record
    return atomic_write_json(
        folder / REFERENCE,
        {
            "version": VERSION,
            "edgeclf_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": fingerprint(RECORDED_THREADS, "cpu"),
            "threads": RECORDED_THREADS,
            "samples": names,
            "tolerances": tolerances,
            "rule": RULE,
            "artifacts": records,
        },
    )


def _png(image: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@dataclass
class ParityCheck:
    """One artifact's verdict: passed, and one line per check made (or the reason it failed)."""

    artifact: str
    passed: bool
    details: list[str] = field(default_factory=list)
    skipped: bool = False  # its engine is not installed here (and it was not asked for by name)


@dataclass
class VerifyResult:
    checks: list[ParityCheck]
    samples: int
    reference_machine: dict
    machine: dict

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if not c.skipped)


def _load_reference(index: Path) -> dict:
    path = index.parent / PARITY_DIR / REFERENCE
    if not path.is_file():
        raise EdgeclfError(f"{path}: not found; re-export with this edgeclf version (edgeclf export writes it)")
    try:
        data = expect_object(read_json(path, MAX_REFERENCE_BYTES), str(path))
        samples, records = data["samples"], data["artifacts"]
        if data.get("version") != VERSION or not isinstance(samples, list) or not isinstance(records, dict):
            raise ValueError("unknown version or layout")
        if not 1 <= len(samples) <= MAX_SAMPLES:
            raise ValueError(f"{len(samples)} samples (1..{MAX_SAMPLES} expected)")
        if not all(isinstance(entry, dict) for entry in samples) or not all(
            isinstance(r, dict) for r in records.values()
        ):
            raise ValueError("samples and artifact records must be objects")
        tolerances = data["tolerances"]
        if not isinstance(tolerances, dict) or not all(
            isinstance(tolerances.get(k), (int, float)) and 0 <= tolerances[k] < 1e6 for k in ("fp32", "fp16")
        ):
            raise ValueError("tolerances must give fp32 and fp16 numbers")
    except BoundedReadError as exc:
        raise MalformedIndexError(f"{exc}; re-export") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedIndexError(f"{path}: not a valid parity file ({shorten(str(exc))}); re-export") from None
    return data


def _read_samples(folder: Path, samples: list[dict], size: tuple[int, int]) -> np.ndarray:
    pixels = []
    for entry in samples:
        file = (folder / str(entry.get("file", ""))).resolve()
        if folder.resolve() not in file.parents or not file.is_file():
            raise EdgeclfError(f"{folder / REFERENCE}: sample {entry.get('file')!r} is missing or outside {folder}")
        content = file.read_bytes()
        if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
            raise IntegrityError(f"{file}: changed since export (sha256 differs from {REFERENCE})")
        try:
            pixels.append(load_image(file, size))
        except ImageError as exc:
            raise EdgeclfError(f"{file}: not a usable sample image ({exc}); re-export") from None
    return np.stack(pixels)


def _file_matches(index: Path, info: ArtifactInfo, recorded: dict) -> str | None:
    """None when the file is the one exported, else why not."""
    path = artifact_file(index, info)
    if not path.is_file():
        return f"{path.name} is missing"
    if path.stat().st_size != info.bytes:
        return f"{path.name} has {path.stat().st_size} bytes, artifacts.json records {info.bytes}: changed since export"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != info.sha256 or digest != recorded.get("sha256"):
        return (
            f"{path.name}: sha256 {digest[:12]}... differs from the exported file's {info.sha256[:12]}...: "
            "changed since export"
        )
    return None


class Malformed(Exception):
    """The recorded reference for an artifact cannot be used; the message says what to do."""


def _check(
    info: ArtifactInfo, file: Path, recorded: dict, pixels: np.ndarray, tolerances: dict, threads: int | None
) -> ParityCheck:
    """Run the artifact on the samples with each kernel set it was recorded with, and judge each
    by the rule in the module docstring."""
    check = ParityCheck(info.name, True)
    try:
        for kernels in _kernel_sets(info):
            want = _recorded_outputs(recorded, kernels, (len(pixels), len(info.labels)))
            got = _raw_outputs(Classifier(info, file, threads, kernels=kernels), pixels).astype(np.float64)
            if not info.precision.is_integer:
                ok, detail = _judge_float(kernels, got, want, _float_tolerance(tolerances, info.precision))
            elif kernels == "reference":
                ok, detail = _judge_reference(got, want)
            else:
                ok, detail = _judge_fast(info, got, want, recorded)
            check.passed &= ok
            check.details.append(detail)
    except Malformed as exc:
        return ParityCheck(info.name, False, [str(exc)])
    return check


def _float_tolerance(tolerances: dict, precision: str) -> float:
    """fp32 files are held to the fp32 tolerance; fp16 and bf16 to their own (bf16: the fp16 one in
    parity files written before bf16 existed)."""
    if precision == "fp32":
        return tolerances["fp32"]
    value = tolerances.get(precision, tolerances["fp16"])
    return float(value) if isinstance(value, (int, float)) else tolerances["fp16"]


def _recorded_outputs(recorded: dict, kernels: str, shape: tuple[int, int]) -> np.ndarray:
    try:
        want = np.asarray(recorded["outputs"][kernels], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise Malformed(f"no usable {kernels}-kernel outputs recorded; re-export") from None
    if want.shape != shape:
        raise Malformed(f"recorded outputs have shape {want.shape}, expected {shape}; re-export")
    return want


def _judge_float(kernels: str, got: np.ndarray, want: np.ndarray, tolerance: float) -> tuple[bool, str]:
    diff = float(np.abs(got - want).max())
    ok = diff <= tolerance
    return ok, f"{kernels} kernels: max |Δ| {diff:.2e} {'≤' if ok else '>'} tolerance {tolerance:g}"


def _judge_reference(got: np.ndarray, want: np.ndarray) -> tuple[bool, str]:
    steps = int(np.abs(got - want).max())
    if steps == 0:
        return True, "reference kernels: raw outputs bit-identical"
    return False, f"reference kernels: raw outputs differ by up to {steps} quantization steps (must be identical)"


def _judge_fast(info: ArtifactInfo, got: np.ndarray, want: np.ndarray, recorded: dict) -> tuple[bool, str]:
    """A top-1 may change only on a near-tie of the reference output (TFLite), or never (ONNX)."""
    changed = np.flatnonzero(got.argmax(1) != want.argmax(1))
    gap = np.abs(got - want).max()
    size = f"max {int(gap)} quantization steps" if info.output.quantized else f"max |Δp| {gap:.2e}"
    differs = f"fast kernels: top-1 differs on {len(changed)}/{len(got)} samples"
    if "reference" not in recorded["outputs"]:  # ONNX Runtime, OpenVINO: no portable kernels to judge near-ties by
        return len(changed) == 0, f"{differs} (an ONNX engine has no reference kernels: every top-1 must hold); {size}"
    try:
        limit = 2 * int(recorded["kernel_spread"]["max_steps"])
        reference = np.sort(np.asarray(recorded["outputs"]["reference"], dtype=np.float64), axis=1)
    except (KeyError, TypeError, ValueError):
        raise Malformed("the recorded kernel_spread is malformed; re-export") from None
    margins = reference[:, -1] - reference[:, -2]
    confident = [int(i) for i in changed if margins[i] > limit]
    if confident:
        return False, (
            f"{differs}, {len(confident)} of them confident (reference margin > 2 x {limit // 2} steps: samples "
            f"{', '.join(map(str, confident))}); {size}"
        )
    return True, f"{differs} (allowed: near-ties within 2 x {limit // 2} steps of the reference output); {size}"


def verify(export_dir: Path, names: list[str] | None = None, threads: int | None = None) -> VerifyResult:
    """Re-run every validated artifact (or `names`) on the parity samples and apply the rule above,
    with `threads` inference threads (None: as many as the reference outputs were recorded with;
    0: every core).
    Raises EdgeclfError for a folder without artifacts.json or parity data, or an unknown name."""
    try:
        index = locate_artifacts(export_dir)
    except FileNotFoundError:
        raise EdgeclfError(
            f"{export_dir}: no artifacts.json; point at an export folder or an unpacked bundle"
        ) from None
    reference = _load_reference(index)
    threads = inference_threads(RECORDED_THREADS if threads is None else threads)
    entries = pick([a for a in read_artifacts(index) if a.status == "ok"], names)
    if not entries:
        raise EdgeclfError(f"{index}: no validated artifacts to verify")
    folder = index.parent / PARITY_DIR
    pixels = _read_samples(folder, reference["samples"], entries[0].image_size)
    checks = []
    for info in entries:
        recorded = reference["artifacts"].get(info.name)
        if recorded is None:
            checks.append(ParityCheck(info.name, False, ["no recorded outputs for this artifact; re-export"]))
            continue
        changed = _file_matches(index, info, recorded)
        if changed:
            checks.append(ParityCheck(info.name, False, [changed]))
            continue
        engine = engine_of(info)
        if not names and not engine_available(engine):
            checks.append(ParityCheck(info.name, True, [f"skipped: {engine} is not installed here"], skipped=True))
            continue
        checks.append(_check(info, artifact_file(index, info), recorded, pixels, reference["tolerances"], threads))
    return VerifyResult(checks, len(pixels), reference.get("machine", {}), fingerprint(threads, "cpu"))
