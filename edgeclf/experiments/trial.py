"""One trial of a sweep: a complete edgeclf run in TRIAL_DIR/run, measured.

train -> qat (where the architecture allows it and the space asks for it) -> export --int8 (TFLite:
fp32 and the int8 file, each validated against the float model) -> bench of the int8 file and the
fp32 file on this machine. TRIAL_DIR/config.yaml is the trial's whole configuration (the sweep writes
it); TRIAL_DIR/result.json what the sweep reads back: the objectives (validation accuracy of the int8
file, its p50 latency, its size) and everything the comparison report shows. The test split is not
touched here.

Run in a child process by the sweep (`python -m edgeclf.experiments.trial DATA_DIR TRIAL_DIR [--qat] [--runs N]
[--threads N]`), so that a trial's memory and TensorFlow state end with it and a killed sweep leaves
at most one unfinished trial.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeclf.core.atomic import atomic_write_json

RESULT = "result.json"
CONFIG = "config.yaml"
RUN = "run"
# the int8 gate is the sweep's objective, not a reason to drop a trial: every trial's int8 file is kept
TRIAL_EXPORT = {
    "export.formats": ["tflite"],
    "export.float16": False,
    "export.dynamic": False,
    "export.max_drop": 100.0,
}


@dataclass
class TrialResult:
    int8_artifact: str
    val_accuracy_int8: float
    val_accuracy_float: float
    agreement: float
    size_bytes: int
    p50_ms: float
    p99_ms: float
    fp32_p50_ms: float
    fp32_size_bytes: int
    train_seconds: float
    seconds: float
    qat: bool
    epochs_run: int
    best_val_loss: float


def pruning_callback(storage: str, study_name: str, number: int, startup: int, warmup: int):
    """A Keras callback reporting each epoch's validation loss to trial `number` of the single-
    objective pruning study (edgeclf.experiments.sweep) and raising optuna.TrialPruned when its pruner (the median
    stopping rule after `startup` trials and `warmup` epochs: a pruner is not stored with the study, so
    it is given here) says the trial is worse than the earlier ones at that epoch."""
    import optuna
    import tf_keras as keras

    pruner = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    trial = optuna.trial.Trial(study, study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))

    class Prune(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            loss = float((logs or {}).get("val_loss", math.inf))
            trial.report(loss if math.isfinite(loss) else 1e30, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch + 1}: validation loss {loss:.4f}, worse than earlier trials")

    return Prune()


def run_trial(
    data_dir: Path, trial_dir: Path, *, qat: bool, runs: int, threads: int, pruning=None
) -> TrialResult | None:
    """The trial described by trial_dir/config.yaml; writes trial_dir/run and trial_dir/result.json.
    pruning: (storage, study name, trial number, startup trials, warm-up epochs) of the pruning study
    (edgeclf.experiments.sweep); a pruned trial writes
    {"pruned": true, "reason": ...} and returns None."""
    import optuna

    from edgeclf.core.config import load_config
    from edgeclf.export.stage import export_run
    from edgeclf.measure.bench import run_bench
    from edgeclf.runtime.artifact import read_artifacts
    from edgeclf.training.qat import run_qat
    from edgeclf.training.train import prepare, train

    started = time.perf_counter()
    cfg = load_config([trial_dir / CONFIG])
    run = trial_dir / RUN
    callbacks = [pruning_callback(*pruning)] if pruning else []
    try:
        fitted = train(prepare(data_dir, run, cfg, overwrite=True), run, cfg, overwrite=True, callbacks=callbacks)
    except optuna.TrialPruned as exc:
        atomic_write_json(trial_dir / RESULT, {"pruned": True, "reason": str(exc)})
        return None
    if qat:
        run_qat(run)
    source = "qat" if qat else "ptq"
    export_run(run, int8=True, overrides={**TRIAL_EXPORT, "export.int8_source": source})
    artifacts = {a.name: a for a in read_artifacts(run / "export")}
    int8, fp32 = artifacts[f"tflite-int8-{source}"], artifacts["tflite-fp32"]
    bench = run_bench(
        run,
        cfg.bench.model_copy(
            update={"runs": runs, "seconds": None, "warmup": 10, "batch_sizes": [1], "threads": threads}
        ),
    )
    timed = {name: record["batches"][0] for name, record in bench.document["artifacts"].items()}
    history = json.loads((run / "metadata.json").read_text())["training"]
    result = TrialResult(
        int8_artifact=int8.name,
        val_accuracy_int8=float(int8.validation["accuracy"]),
        val_accuracy_float=float(int8.validation["float_accuracy"]),
        agreement=float(int8.validation["agreement_with_float"]),
        size_bytes=int8.bytes,
        p50_ms=float(timed[int8.name]["p50_ms"]),
        p99_ms=float(timed[int8.name]["p99_ms"]),
        fp32_p50_ms=float(timed[fp32.name]["p50_ms"]),
        fp32_size_bytes=fp32.bytes,
        train_seconds=float(fitted.seconds),
        seconds=time.perf_counter() - started,
        qat=qat,
        epochs_run=int(history["epochs_run"]),
        best_val_loss=float(history["val_loss"]) if math.isfinite(history["val_loss"]) else math.inf,
    )
    atomic_write_json(trial_dir / RESULT, asdict(result))
    return result


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edgeclf.experiments.trial", description="One sweep trial.")
    parser.add_argument("data_dir")
    parser.add_argument("trial_dir", type=Path)
    parser.add_argument("--qat", action="store_true")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prune", nargs=5, metavar=("STORAGE", "STUDY", "NUMBER", "STARTUP", "WARMUP"))
    args = parser.parse_args()
    from edgeclf.core.errors import EdgeclfError

    try:
        pruning = (*args.prune[:2], *map(int, args.prune[2:])) if args.prune else None
        run_trial(args.data_dir, args.trial_dir, qat=args.qat, runs=args.runs, threads=args.threads, pruning=pruning)
    except EdgeclfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
