"""One benchmark measurement in a fresh process (so import, load time and peak memory are its own).
Invoked by edgeclf.measure.bench as `python -m edgeclf.measure.bench_worker JOB_JSON`; prints one JSON line.
The spans it reports are defined once, in edgeclf.runtime.timing.SPANS."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from edgeclf.measure.keras_baseline import KERAS_NAME, KerasClassifier, import_keras
from edgeclf.measure.latency import MAX_SAMPLES, latency_stats, time_calls
from edgeclf.runtime.artifact import artifact_file, read_artifacts
from edgeclf.runtime.backends import import_engine, resolve_engine
from edgeclf.runtime.classifier import Classifier

PER_IMAGE_REPEATS = 20  # preprocess_ms and postprocess_ms are the mean of this many single-image calls


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


def _mean_ms(fn, arg, repeats: int = PER_IMAGE_REPEATS) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        fn(arg)
    return (time.perf_counter() - started) * 1000 / repeats


def _open(job: dict, run: Path):
    """(classifier, import_ms, load_ms): the engine is imported first, outside the load clock."""
    threads = job["threads"]
    if job["name"] == KERAS_NAME:
        started = time.perf_counter()
        tf, _ = import_keras()
        import_ms = (time.perf_counter() - started) * 1000
        if job["device"] == "cpu":  # a CPU bench measures the CPU even where TensorFlow sees a GPU
            tf.config.set_visible_devices([], "GPU")
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        started = time.perf_counter()
        clf = KerasClassifier(run / "model.keras", [], trace_batch=1)
        return clf, import_ms, (time.perf_counter() - started) * 1000
    info = {a.name: a for a in read_artifacts(run)}[job["name"]]
    file = artifact_file(run, info)
    engine = resolve_engine(file, info.engine, job.get("engine"))
    started = time.perf_counter()
    import_engine(engine)
    import_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    clf = Classifier(info, file, threads, job["device"], engine=job.get("engine"))
    return clf, import_ms, (time.perf_counter() - started) * 1000


def main(job: dict) -> dict:
    pixels = np.load(job["inputs"])
    run = Path(job["run"])
    before = rss_mb("VmRSS")
    clf, import_ms, load_ms = _open(job, run)
    invoke = clf.run if isinstance(clf, KerasClassifier) else clf.backend.run
    x1 = clf.prepare(pixels[:1])
    start = time.perf_counter()
    raw1 = invoke(x1)
    first_ms = (time.perf_counter() - start) * 1000
    result = {
        "engine": clf.engine,
        "engine_name": getattr(clf, "engine_name", "tensorflow"),
        "engine_version": clf.version,
        "kernels": clf.kernels,
        "import_ms": import_ms,
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        "preprocess_ms": _mean_ms(clf.prepare, pixels[:1]),
        "postprocess_ms": _mean_ms(clf.finish, raw1),
    }
    batches, samples, predict_on_batch = [], [], []
    for batch in job["batch_sizes"]:
        x = clf.prepare(pixels[:batch])
        if hasattr(getattr(clf, "backend", None), "reserve"):  # OpenVINO compiles per batch size: not timed
            clf.backend.reserve(batch)
        times = time_calls(invoke, x, job["warmup"], job["runs"], job["seconds"])
        batches.append(latency_stats(times, batch))
        if batch == 1:
            samples = times[:MAX_SAMPLES]
        if isinstance(clf, KerasClassifier):  # Keras' convenience path, measured the same way, reported apart
            predict_on_batch.append(
                latency_stats(
                    time_calls(clf.run_predict_on_batch, x, job["warmup"], job["runs"], job["seconds"]), batch
                )
            )
    result.update(batches=batches, samples_ms_batch1=samples, rss_before_load_mb=before, peak_rss_mb=rss_mb())
    if predict_on_batch:
        result["predict_on_batch"] = predict_on_batch
    return result


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
