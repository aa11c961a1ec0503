"""One benchmark measurement in a fresh process (so load time and peak memory are its own).
Invoked by edgeclf.bench as `python -m edgeclf.bench_worker JOB_JSON`; prints one JSON line."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident set of this process, in MiB. Linux keeps ru_maxrss
    across exec, so a worker started by a large parent would report the parent's peak; VmHWM
    belongs to this process image alone."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(job: dict) -> dict:
    from edgeclf.bench import MAX_SAMPLES, latency_stats, time_calls

    pixels = np.load(job["inputs"])
    run = Path(job["run"])
    threads = job["threads"]
    before = rss_mb("VmRSS")
    started = time.perf_counter()
    if job["name"] == "keras-fp32":
        import tensorflow as tf

        if job["device"] == "cpu":  # a CPU bench measures the CPU even where TensorFlow sees a GPU
            tf.config.set_visible_devices([], "GPU")
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from edgeclf.runtime.keras_baseline import KerasClassifier

        started_after_import = time.perf_counter()
        clf = KerasClassifier(run / "model.keras", [])
        run_fn, prepare = clf.run, clf.prepare
    else:
        from edgeclf.runtime.artifact import artifact_file, read_artifacts
        from edgeclf.runtime.classifier import Classifier

        info = {a.name: a for a in read_artifacts(run)}[job["name"]]
        started_after_import = time.perf_counter()
        clf = Classifier(info, artifact_file(run, info), threads, job["device"])
        run_fn, prepare = clf.backend.run, clf.prepare
    load_ms = (time.perf_counter() - started_after_import) * 1000
    import_ms = (started_after_import - started) * 1000
    x1 = prepare(pixels[:1])
    start = time.perf_counter()
    run_fn(x1)
    first_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for _ in range(20):
        prepare(pixels[:1])
    preprocess_ms = (time.perf_counter() - start) * 1000 / 20
    batches, samples = [], []
    for batch in job["batch_sizes"]:
        x = prepare(pixels[:batch])
        times = time_calls(run_fn, x, job["warmup"], job["runs"], job["seconds"])
        batches.append(latency_stats(times, batch))
        if batch == 1:
            samples = times[:MAX_SAMPLES]
    return {"engine": clf.engine, "load_ms": load_ms, "import_ms": import_ms, "first_inference_ms": first_ms, "preprocess_ms_per_image": preprocess_ms,
            "batches": batches, "samples_ms_batch1": samples, "rss_before_load_mb": before, "peak_rss_mb": rss_mb()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
