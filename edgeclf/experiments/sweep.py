"""`edgeclf sweep`: search model size, resolution and training settings with Optuna; every trial is
a complete, validated edgeclf run (edgeclf.experiments.trial) measured on this machine.

The study (SWEEP_DIR/study.db, SQLite) has three objectives: the int8 file's validation accuracy
(maximize), its p50 latency at batch 1 (minimize) and its size (minimize), searched with Optuna's
multi-objective TPE, NSGA-II, or a grid (space.yaml: `sampler`). Trials are asked and told by this
process and run as child processes, `--jobs` at a time, in SWEEP_DIR/trials/NNN/ (NNN: the Optuna
trial number). A sweep resumes from SWEEP_DIR alone: space.yaml is copied there on the first run
(a different one later is refused), the study is loaded from the database, and a trial left running
by a killed sweep (its process gone) is marked failed and its parameters asked again. Several
processes or machines can work on one study through a shared database (`--storage`).

Imports Optuna (the train extra): load it lazily, as the CLI does.

Pruning: Optuna's pruners serve single-objective studies only (Trial.report and should_prune raise
for several objectives). So each trial has a twin in a second, single-objective study in the same
storage (`edgeclf-sweep-pruning`, minimizing the validation loss) whose MedianPruner (the median
stopping rule) sees every epoch's validation loss: a trial worse than the median of the earlier ones at
the same epoch (after `prune_startup` trials and `prune_warmup` epochs) stops there, and is PRUNED in
both studies (space.yaml `prune: false` turns it off).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import optuna

from edgeclf.core.atomic import atomic_write_text
from edgeclf.core.config import SweepConfig, load_config
from edgeclf.core.errors import ConfigError, EdgeclfError
from edgeclf.experiments.search_space import SearchSpace, load_space, overrides
from edgeclf.experiments.trial import CONFIG, RESULT

log = logging.getLogger(__name__)

SPACE = "space.yaml"
STUDY_DB = "study.db"
STUDY_NAME = "edgeclf-sweep"
PRUNING_STUDY = "edgeclf-sweep-pruning"
TRIALS = "trials"
OBJECTIVES = (("val_accuracy_int8", "maximize"), ("p50_ms", "minimize"), ("size_bytes", "minimize"))


@dataclass
class SweepResult:
    sweep_dir: Path
    completed: int
    pruned: int
    failed: int
    seconds: float
    best: object = None  # edgeclf.experiments.compare.Row: the most accurate int8 trial within the budgets, if any


def distributions(space: SearchSpace) -> dict:
    """Optuna distributions for the space's params."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for key, values in space.params.items():
        if isinstance(values, list):
            out[key] = CategoricalDistribution(values)
        elif values.integer and not values.log:
            out[key] = IntDistribution(int(values.low), int(values.high), step=int(values.step or 1))
        elif values.integer:
            out[key] = IntDistribution(int(values.low), int(values.high), log=True)
        else:
            out[key] = FloatDistribution(values.low, values.high, log=values.log, step=values.step)
    return out


def _sampler(space: SearchSpace):
    if space.sampler == "grid":
        return AskTellGrid({k: list(v) for k, v in space.params.items()}, seed=space.seed)
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=space.seed)
    return optuna.samplers.TPESampler(seed=space.seed, multivariate=True)


class AskTellGrid(optuna.samplers.GridSampler):
    """GridSampler whose after_trial does not call study.stop() once the grid is exhausted: stop()
    works only inside study.optimize, and the sweep asks and tells (it stops by its trial count)."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def storage_url(sweep_dir: Path, storage: str | None = None) -> str:
    return storage or f"sqlite:///{(Path(sweep_dir) / STUDY_DB).resolve()}"


def open_study(sweep_dir: Path, space: SearchSpace, storage: str | None = None):
    """The sweep's study, created on the first run, loaded after."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage_url(sweep_dir, storage),
        directions=[direction for _, direction in OBJECTIVES],
        sampler=_sampler(space),
        load_if_exists=True,
    )


def open_pruning_study(sweep_dir: Path, space: SearchSpace, storage: str | None = None):
    """The single-objective twin study whose pruner judges each trial's validation loss per epoch."""
    return optuna.create_study(
        study_name=PRUNING_STUDY,
        storage=storage_url(sweep_dir, storage),
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=space.prune_startup, n_warmup_steps=space.prune_warmup),
        load_if_exists=True,
    )


def _prepare_dir(sweep_dir: Path, space_path: Path | None, trials: int | None) -> SearchSpace:
    """SWEEP_DIR/space.yaml: copied from --space on the first run; the same file (or none) later.
    Everything is checked before the folder is made: a refused sweep leaves no empty --out."""
    kept = sweep_dir / SPACE
    if kept.exists():
        if space_path is not None and Path(space_path).read_bytes() != kept.read_bytes():
            raise ConfigError(
                f"--space {space_path}: differs from the {kept} this sweep started with; "
                "resume without --space, or start a new --out"
            )
        return load_space(kept)
    if space_path is None:
        raise ConfigError(f"{sweep_dir}: no {SPACE} there; give --space on the first run")
    space = load_space(space_path)
    _check_trials(space, trials)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(kept, Path(space_path).read_text(encoding="utf-8"))
    return space


def _check_trials(space: SearchSpace, trials: int | None) -> None:
    wanted = trials or space.trials
    if space.sampler == "grid" and wanted > space.grid_size():
        raise ConfigError(f"--trials {wanted}: the grid has {space.grid_size()} combinations")


def _orphans(study) -> list:
    """RUNNING trials of this host whose sweep process is gone."""
    from optuna.trial import TrialState

    from edgeclf.core.atomic import process_alive

    found = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.user_attrs.get("host") != socket.gethostname():  # another machine's: not ours to judge
            continue
        pid = int(frozen.user_attrs.get("pid", 0))
        if not (pid and process_alive(pid) and pid != os.getpid()):
            found.append(frozen)
    return found


def _recover_stale(study, pruning, sweep_dir: Path) -> int:
    """Trials a killed sweep left RUNNING (their process gone): marked failed, parameters asked again."""
    from optuna.trial import TrialState

    recovered = 0
    for frozen in _orphans(pruning):
        pruning.tell(frozen.number, state=TrialState.FAIL)
    for frozen in _orphans(study):
        study.tell(frozen.number, state=TrialState.FAIL)
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})
        shutil.rmtree(sweep_dir / TRIALS / f"{frozen.number:03d}", ignore_errors=True)
        recovered += 1
    return recovered


def run_sweep(
    data_dir: str,
    sweep_dir: Path,
    space_path: Path | None,
    options: SweepConfig,
    *,
    trials: int | None = None,
    storage: str | None = None,
    budget_ms: float | None = None,
    budget_kb: float | None = None,
) -> SweepResult:
    """Run (or resume) the sweep until `trials` trials (default: the space's) have finished (completed
    or pruned), options.jobs at a time, each benched with options.runs runs on options.threads
    threads (sweep.*); the best trial within the budgets (edgeclf.experiments.compare.choose,
    validation accuracy: the test split stays for `edgeclf compare`) is in the result."""
    from optuna.trial import TrialState

    started = time.perf_counter()
    sweep_dir = Path(sweep_dir)
    space = _prepare_dir(sweep_dir, space_path, trials)
    _check_trials(space, trials)  # also on a resumed sweep
    wanted = trials or space.trials
    study = open_study(sweep_dir, space, storage)
    pruning = open_pruning_study(sweep_dir, space, storage)
    if recovered := _recover_stale(study, pruning, sweep_dir):
        log.warning(f"{recovered} trial(s) left unfinished by an interrupted sweep: asked again")

    def done_count() -> int:  # a pruned trial is a finished one (as Optuna's n_trials counts)
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))

    failed = 0
    ask = partial(_one_trial, data_dir, sweep_dir, space, study, pruning, storage, options)
    with ThreadPoolExecutor(options.jobs) as pool:
        while done_count() < wanted:
            batch = min(options.jobs, wanted - done_count())
            failed += list(pool.map(lambda _: ask(), range(batch))).count(False)
            if failed > max(3, wanted):
                raise EdgeclfError(f"{failed} trials failed; see {sweep_dir / TRIALS}/*/trial.log")
    from edgeclf.experiments.compare import choose, collect

    best = choose(collect([sweep_dir]), budget_ms, budget_kb)
    completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    pruned = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    return SweepResult(sweep_dir, completed, pruned, failed, time.perf_counter() - started, best)


def _one_trial(data_dir, sweep_dir: Path, space: SearchSpace, study, pruning, storage, options: SweepConfig) -> bool:
    """Ask the study for a trial (and its pruning twin), run it in a child process and tell both
    studies the outcome; False when the trial failed."""
    from optuna.trial import TrialState

    trial, twin = study.ask(distributions(space)), pruning.ask()
    for t in (trial, twin):
        t.set_user_attr("pid", os.getpid())
        t.set_user_attr("host", socket.gethostname())
    folder = sweep_dir / TRIALS / f"{trial.number:03d}"
    url = storage_url(sweep_dir, storage)
    prune = (url, PRUNING_STUDY, twin.number, space.prune_startup, space.prune_warmup) if space.prune else None
    result = _run_child(data_dir, folder, space, trial.params, options.runs, options.threads, prune)
    if result is None:
        study.tell(trial, state=TrialState.FAIL)
        pruning.tell(twin, state=TrialState.FAIL)
        return False
    if result.get("pruned"):
        study.tell(trial, state=TrialState.PRUNED)
        pruning.tell(twin, state=TrialState.PRUNED)
        return True
    study.tell(trial, [result[name] for name, _ in OBJECTIVES])
    pruning.tell(twin, result["best_val_loss"])
    return True


def _run_child(
    data_dir, folder: Path, space: SearchSpace, params: dict, runs: int, threads: int, prune: tuple | None
) -> dict | None:
    """Write the trial's config.yaml and run it (edgeclf.experiments.trial) in a child process; its result
    ({"pruned": true, ...} when it was pruned), or None when it failed (the reason is in trial.log)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cfg = load_config(overrides=overrides({**space.base, **params, "seed": space.seed}))
    atomic_write_text(folder / CONFIG, cfg.to_yaml())
    atomic_write_text(folder / "params.json", json.dumps(params, indent=2) + "\n")
    log.info(f"trial {folder.name}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    command = [
        sys.executable,
        "-m",
        "edgeclf.experiments.trial",
        str(data_dir),
        str(folder),
        "--runs",
        str(runs),
        "--threads",
        str(threads),
        *(["--qat"] if space.qat else []),
        *(["--prune", *map(str, prune)] if prune else []),
    ]
    with open(folder / "trial.log", "w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not (folder / RESULT).is_file():
        log.warning(f"trial {folder.name}: failed (exit {proc.returncode}); see {folder / 'trial.log'}")
        return None
    result = json.loads((folder / RESULT).read_text())
    if result.get("pruned"):
        log.info(f"trial {folder.name}: pruned ({result['reason']})")
        return result
    log.info(
        f"trial {folder.name}: int8 val accuracy {result['val_accuracy_int8']:.4f}, "
        f"p50 {result['p50_ms']:.3f} ms, {result['size_bytes'] / 1024:.0f} KiB"
    )
    return result
