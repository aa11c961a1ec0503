"""`edgeclf bench`: latency, throughput, load time and memory of the float Keras model and every
artifact, each measured in its own process on the same inputs, with a device fingerprint.

Method (after TFLite's benchmark_model and onnxruntime_perf_test): load time, first inference,
warm-up runs, then a fixed number of timed runs (or a time budget) per batch size; only the
engine's invoke is timed (decoding and preprocessing are measured and reported apart); the thread
count is set and recorded; peak RSS is the worker process's maximum resident set.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgeclf.core.atomic import atomic_write_json
from edgeclf.core.config import BenchConfig
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.images import load_image
from edgeclf.core.run_directory import METADATA, MODEL, REPORTS, Run
from edgeclf.data.reader import split_batches
from edgeclf.measure import latency
from edgeclf.measure.keras_baseline import KERAS_NAME
from edgeclf.runtime.artifact import artifact_file, locate_artifacts, read_artifacts
from edgeclf.runtime.backends import for_engine, runnable
from edgeclf.runtime.integrity import check_recorded
from edgeclf.runtime.machine import fingerprint, inference_threads
from edgeclf.runtime.timing import SPANS

SCHEMA_VERSION = 2  # 2: spans defined in the file; import outside load; compiled Keras baseline; inputs.split
log = logging.getLogger(__name__)


@dataclass
class BenchResult:
    """Where bench.json was written, and its content: `document` follows the bench.json schema
    (SCHEMA_VERSION; device, spans, method, inputs, artifacts by name, notes), which is also what
    edgeclf report reads from other devices."""

    path: Path
    document: dict

    @property
    def artifacts(self) -> dict[str, dict]:
        return self.document["artifacts"]

    @property
    def notes(self) -> list[str]:
        return self.document["notes"]


def run_bench(
    target: Path, options: BenchConfig, out: Path | None = None, images: Path | None = None, integrity: bool = True
) -> BenchResult:
    """Bench a run directory (the Keras baseline and every artifact, on its test images), or an
    export folder alone, as on a device (every artifact, on the images under `images`); each
    measurement runs in its own process. Writes bench.json (default: RUN_DIR/reports/bench.json, or
    ./bench.json for an export folder). Raises EdgeclfError for a folder that is neither, a missing
    GPU provider, or a failed measurement."""
    target = Path(target)
    if options.device == "gpu":
        _require_gpu()
    threads = inference_threads(options.threads)
    is_run = (target / METADATA).is_file()
    entries = _validated_artifacts(target, is_run)
    entries = for_engine(entries, options.engine)  # ONNX files the engine can run; TFLite ones stay on LiteRT
    entries, skipped = runnable(entries, options.engine)
    if skipped:
        log.warning(f"{', '.join(skipped)}: skipped, their engine is not installed here")
    if integrity and entries:  # the files measured are the files exported
        index = locate_artifacts(target)
        for entry in entries:
            check_recorded(artifact_file(index, entry), entry.bytes, entry.sha256, index)
    size = entries[0].image_size if entries else _run_image_size(target)
    pixels, decode_ms, images_used, split = _inputs(target, is_run, images, size, options)
    targets = ([(KERAS_NAME, "keras", "fp32", None)] if is_run else []) + [
        (a.name, a.format, a.precision, a) for a in entries
    ]
    results = _measure(target, targets, pixels, threads, options)
    latency.speedups(results)
    document = _document(target, options, threads, results, images_used, split, images, decode_ms)
    if skipped:
        document["notes"].append(f"not measured, their engine is not installed on this device: {', '.join(skipped)}")
    path = Path(out) if out else (target / REPORTS / "bench.json" if is_run else Path("bench.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return BenchResult(atomic_write_json(path, document), document)


def _inputs(target: Path, is_run: bool, images: Path | None, size: int, options: BenchConfig):
    """(the timed inputs, decode ms per image or None, how many distinct images, the split): the
    run's test images (validation when it has no test split) or the files under `images`, at least
    the largest batch; a run trained on a pack has no files, so no decode time."""
    files, split = _input_files(target, is_run, images)
    count = max(*options.batch_sizes, 32)  # at least the largest batch; 32 images are enough to time
    if files is None:
        pixels = next(split_batches(Run.open(target).dataset, split, size, count))
        return _repeated(pixels, max(options.batch_sizes)), None, len(pixels), split
    pixels, decode_ms = _decoded(files[:count], size, options)
    return pixels, decode_ms, len(files[:count]), split


def _measure(target: Path, targets: list[tuple], pixels: np.ndarray, threads: int, options: BenchConfig) -> dict:
    """Each (name, format, precision, artifact info) measured in its own process on the same inputs."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="edgeclf-bench-") as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, pixels)
        for name, fmt, precision, info in targets:
            log.info(f"  {name}: measuring")
            shared = options.model_dump(include={"warmup", "runs", "seconds", "batch_sizes", "device", "engine"})
            job = {"run": str(target), "name": name, "inputs": str(inputs), "threads": threads, **shared}
            result = _worker(job)
            size = info.bytes if info else (target / MODEL).stat().st_size
            results[name] = {**result, "name": name, "format": fmt, "precision": precision, "file_bytes": size}
            if info is not None and info.status != "ok":
                results[name]["status"] = f"failed validation, repaired by {info.validation['repaired_by']}"
            if info is not None and info.precision.is_mixed:
                results[name]["repairs"] = info.repair_record.get("repairs", [])
    return results


def _document(target, options: BenchConfig, threads, results, images_used, split, images, decode_ms) -> dict:
    """bench.json: the machine, the spans' definitions, the method, the inputs, every artifact's
    measurements and the notes a reader needs."""
    notes = latency.notes(results)
    if split == "val":
        notes.append("the run has no test split: the timed inputs are validation images")
    source = str(images) if images is not None else f"the run's {split} split"
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": str(target),
        "device": fingerprint(threads, options.device),
        "spans": SPANS,
        "method": {
            **options.model_dump(include={"warmup", "runs", "seconds", "batch_sizes"}),
            "threads": threads,
            "timed": "batches[].*_ms are invoke_ms statistics (after warm-up); the other spans are reported apart",
            "keras_baseline": "compiled tf.function of model(x, training=False); predict_on_batch reported apart",
        },
        "inputs": {
            "images": images_used,
            "split": split,
            "source": source,
            "note": "the same decoded images for every artifact",
        },
        "decode_ms": decode_ms,
        "artifacts": results,
        "notes": notes,
    }


def _validated_artifacts(target: Path, is_run: bool) -> list:
    """The artifacts that passed validation, and the failed int8 files that a repair replaced (timed
    beside their repair, so that what it costs is measured; never recommended: report.recommend)."""
    try:
        return [a for a in read_artifacts(target) if a.status == "ok" or a.validation.get("repaired_by")]
    except FileNotFoundError:
        if not is_run:
            raise EdgeclfError(f"{target}: neither an edgeclf run nor an export folder with artifacts.json") from None
        return []


def _decoded(files: list[Path], size, options: BenchConfig) -> tuple[np.ndarray, float]:
    """(the images every artifact is fed, decoded once and repeated up to the largest batch size;
    decode_ms per image)."""
    need = max(options.batch_sizes)
    started = time.perf_counter()
    pixels = np.stack([load_image(f, size) for f in files])
    decode_ms = (time.perf_counter() - started) * 1000 / len(files)
    return _repeated(pixels, need), decode_ms


def _repeated(pixels: np.ndarray, need: int) -> np.ndarray:
    """The images, repeated in order up to `need` when there are fewer (the largest batch size)."""
    return np.resize(pixels, (need, *pixels.shape[1:])) if len(pixels) < need else pixels


def _input_files(target: Path, is_run: bool, images: Path | None) -> tuple[list[Path] | None, str | None]:
    """(image files, the run's split they come from: "test", "val" when the run has no test split,
    or None for --images); no files (None) for a run trained on a pack."""
    if images is not None:
        from edgeclf.core.images import find_images

        return find_images([images]), None
    if not is_run:
        raise EdgeclfError(f"{target}: an export folder alone has no test images; pass --images DIR")
    run = Run.open(target)
    split = "test" if run.dataset.split("test") else "val"
    if run.dataset.pack is not None:
        return None, split
    return [run.dataset.root / r.path for r in run.dataset.split(split)], split


def _run_image_size(target: Path) -> int:
    return Run.open(target).image_size


def _worker(job: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "edgeclf.measure.bench_worker", json.dumps(job)], capture_output=True, text=True
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])[:300]
        raise EdgeclfError(f"bench of {job['name']} failed: {tail}")
    return json.loads(lines[-1])


def _require_gpu() -> None:
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        raise EdgeclfError(
            f"--device gpu: onnxruntime has no CUDAExecutionProvider here (available: {', '.join(providers)}); "
            "install onnxruntime-gpu on a machine with an NVIDIA GPU, or use --device cpu"
        )
