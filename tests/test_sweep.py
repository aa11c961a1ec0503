"""Sweeps (Optuna over complete runs) and the comparison report: the space is checked before anything
trains, the budget picks the right row, a killed sweep resumes into the same study, and compare reads
runs and sweeps."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeclf.core.errors import ConfigError, EdgeclfError
from edgeclf.experiments.compare import Row, choose, collect, compare, pareto_front
from edgeclf.experiments.search_space import load_space

ROOT = Path(__file__).resolve().parents[1]


def _row(name, accuracy, p50, kib):
    return Row(name, "run", "tflite-int8-ptq", {}, accuracy + 0.01, accuracy, 0.99, int(kib * 1024), p50, p50 * 2, 1.0)


HAND_MADE = [
    _row("a", 0.90, 1.0, 300),
    _row("b", 0.93, 2.5, 900),
    _row("c", 0.92, 1.2, 250),
    _row("d", 0.93, 2.0, 1200),
    _row("e", 0.80, 0.4, 100),
    _row("f", 0.91, 3.0, 2000),
]


def test_the_budget_picks_the_most_accurate_row_that_fits():
    assert choose(HAND_MADE).name == "d"  # 0.93 twice: the faster one
    assert choose(HAND_MADE, budget_ms=1.5).name == "c"
    assert choose(HAND_MADE, budget_kb=260).name == "c"
    assert choose(HAND_MADE, budget_ms=1.1, budget_kb=400).name == "a"
    assert choose(HAND_MADE, budget_ms=0.5).name == "e"
    assert choose(HAND_MADE, budget_ms=0.3) is None


def test_pareto_fronts_drop_dominated_rows():
    assert [r.name for r in pareto_front(HAND_MADE, "p50_ms")] == ["e", "a", "c", "d"]  # b and f: slower, no better
    assert [r.name for r in pareto_front(HAND_MADE, "size_bytes")] == ["e", "c", "b"]


def _space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_the_space_is_checked_before_anything_trains(tmp_path):
    ok = load_space(_space(tmp_path, "params:\n  model.alpha: [0.35, 0.5]\n  train.epochs: {low: 2, high: 6}\n"))
    assert ok.params["train.epochs"].integer and ok.sampler == "tpe" and ok.trials == 12
    cases = {
        "params:\n  model.depth: [1, 2]\n": "model.depth",
        "params:\n  data.image_size: [16, 64]\n": "data.image_size",
        "params:\n  train.learning_rate: {low: 0.1, high: 0.01}\n": "low 0.1 must be below high 0.01",
        "sampler: grid\nparams:\n  train.learning_rate: {low: 0.001, high: 0.01}\n": "grid sampler takes lists only",
        "params: {}\n": "params",
        "base:\n  train.epochs: -1\nparams:\n  model.alpha: [0.5]\n": "train.epochs",
        "params: [\n": "not valid YAML",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_space(_space(tmp_path, text))


def test_augment_strength_scales_the_augmentation_together(tmp_path):
    from edgeclf.core.config import load_config
    from edgeclf.experiments.search_space import overrides

    d = load_config().augment
    doubled = overrides({"augment.strength": 2, "model.alpha": 0.5})
    assert doubled["model.alpha"] == 0.5 and "augment.strength" not in doubled
    assert doubled["augment.rotation"] == pytest.approx(2 * d.rotation) and doubled["augment.zoom"] == pytest.approx(
        2 * d.zoom
    )
    assert overrides({"augment.strength": 50})["augment.rotation"] == 0.5  # kept inside its range
    assert overrides({"augment.strength": 0, "augment.contrast": 0.3})["augment.contrast"] == 0
    assert overrides({"augment.strength": 0.5, "augment.zoom": 0.4})["augment.zoom"] == pytest.approx(0.2)
    space = load_space(_space(tmp_path, "params:\n  augment.strength: [0, 1, 2]\n"))
    assert space.params["augment.strength"] == [0, 1, 2]
    with pytest.raises(ConfigError, match="augment.strength -1: must be 0 or more"):
        load_space(_space(tmp_path, "params:\n  augment.strength: [-1, 1]\n"))


def _bench(run: Path, p50: float) -> None:
    reports = run / "reports"
    reports.mkdir(exist_ok=True)
    batch = {"batch": 1, "p50_ms": p50, "p99_ms": p50 * 1.5}
    (reports / "bench.json").write_text(json.dumps({"artifacts": {"tflite-int8-ptq": {"batches": [batch]}}}))


def test_compare_over_two_runs(tiny_run, tmp_path):
    runs = [tmp_path / "fast", tmp_path / "slow"]
    for run, p50 in zip(runs, (0.05, 0.5), strict=True):
        shutil.copytree(tiny_run, run)
        _bench(run, p50)
    result = compare(runs, tmp_path / "out", budget_ms=0.1)
    assert [r.name for r in result.rows] == ["fast", "slow"] and result.chosen.name == "fast"
    assert result.test["split"] == "test" and result.test["images"] == 27 and 0 <= result.test["accuracy"] <= 1
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "compare.md",
        "compare.html",
        "compare.json",
        "pareto_latency.png",
        "pareto_size.png",
        "chosen_test.json",
    }
    assert (
        "Best under p50 <= 0.1 ms: fast (tflite-int8-ptq, small_cnn alpha 0.25, 32 px)"
        in (tmp_path / "out/compare.md").read_text()
    )
    assert compare(runs, tmp_path / "out2", budget_ms=0.01).chosen is None
    with pytest.raises(EdgeclfError, match="neither a run directory nor a sweep folder"):
        collect([tmp_path])
    pruned = tmp_path / "sweep/trials/000"
    pruned.mkdir(parents=True)
    (pruned / "result.json").write_text('{"pruned": true, "reason": "epoch 3: validation loss 2.1"}')
    with pytest.raises(EdgeclfError, match="no completed runs or trials"):  # a pruned trial is no candidate
        collect([tmp_path / "sweep"])


SPACE = """\
seed: 1
sampler: tpe
trials: 3
base:
  model.name: small_cnn
  model.weights: none
  data.image_size: 32
  data.batch_size: 16
  train.fine_tune_epochs: 0
  export.calibration_images: 30
params:
  model.alpha: [0.25, 0.5]
  train.learning_rate: {low: 0.001, high: 0.01, log: true}
  train.epochs: {low: 2, high: 3}
  augment.strength: [0.5, 1.5]
qat: true
"""


def _sweep_command(data, out, *extra):
    return [sys.executable, "-m", "edgeclf", "sweep", str(data), "--out", str(out), "--runs", "10", *extra]


@pytest.mark.slow
def test_a_killed_sweep_resumes_into_the_same_study(tmp_path):
    """Killed (SIGKILL, trial and all) while its second trial runs, the sweep started again from its
    folder alone marks that trial failed, asks its parameters again and completes the same study;
    then compare reads the sweep and evaluates the chosen trial on the test split once."""
    import optuna

    from tests.helpers import class_folders

    data = class_folders(tmp_path / "data", ["bag", "sneaker", "trouser"], 40)
    out = tmp_path / "sweep"
    space = _space(tmp_path, SPACE)
    proc = subprocess.Popen(
        _sweep_command(data, out, "--space", str(space)),
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (out / "trials/001/config.yaml").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (out / "trials/000/result.json").is_file(), "the first trial did not finish"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    storage = f"sqlite:///{out / 'study.db'}"
    before = optuna.load_study(study_name="edgeclf-sweep", storage=storage)
    first = before.trials[0].values
    assert before.trials[1].state == optuna.trial.TrialState.RUNNING

    resumed = subprocess.run(
        _sweep_command(data, out, "--budget-kb", "200"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "3 trial(s) complete" in resumed.stdout and "asked again" in resumed.stdout
    assert "most accurate int8 trial within the budget" in resumed.stdout
    study = optuna.load_study(study_name="edgeclf-sweep", storage=storage)
    assert study._study_id == before._study_id and study.trials[0].values == first
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3 and states[1] == optuna.trial.TrialState.FAIL
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == 1)
    assert retry.params == study.trials[1].params and retry.state == optuna.trial.TrialState.COMPLETE
    assert not (out / "trials/001").exists() and (out / "space.yaml").read_text() == SPACE
    trial = json.loads((out / f"trials/{retry.number:03d}/result.json").read_text())
    assert trial["qat"] and trial["int8_artifact"] == "tflite-int8-qat"  # small_cnn: QAT, as the space asks
    strength = retry.params["augment.strength"]
    config = (out / f"trials/{retry.number:03d}/config.yaml").read_text()
    assert f"rotation: {round(0.05 * strength, 6)}" in config

    other = _space(tmp_path / "..", SPACE.replace("trials: 3", "trials: 4"))
    refused = subprocess.run(_sweep_command(data, out, "--space", str(other)), cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "differs from the" in refused.stderr

    result = compare([out], tmp_path / "cmp", budget_kb=200)  # small_cnn at alpha 0.5 or less: under 100 KiB
    assert len(result.rows) == 3 and result.chosen.val_accuracy_int8 == max(r.val_accuracy_int8 for r in result.rows)
    assert result.test["images"] == 18
    kept = (tmp_path / "cmp/chosen_test.json").stat().st_mtime_ns
    compare([out], tmp_path / "cmp", budget_kb=200)
    assert (tmp_path / "cmp/chosen_test.json").stat().st_mtime_ns == kept  # the test split is used once per file


def test_a_grid_is_asked_and_told_to_the_end(tmp_path):
    """Every combination once, and no study.stop() error when the grid runs out (ask/tell, no optimize)."""
    from edgeclf.experiments.sweep import distributions, open_study

    space = load_space(
        _space(tmp_path, "sampler: grid\nparams:\n  model.alpha: [0.35, 0.5]\n  data.image_size: [32, 48, 64]\n")
    )
    study = open_study(tmp_path, space)
    seen = set()
    for _ in range(space.grid_size()):
        trial = study.ask(distributions(space))
        seen.add((trial.params["model.alpha"], trial.params["data.image_size"]))
        study.tell(trial, [0.5, 1.0, 100.0])
    assert len(seen) == 6 and (tmp_path / "study.db").is_file()


@pytest.mark.slow
def test_a_trial_worse_than_the_earlier_ones_is_pruned(tmp_path):
    """The twin study's MedianPruner stops a trial whose validation loss is above the median of the
    earlier trials at the same epoch, after the warm-up epochs; nothing of its run is left."""
    import optuna

    from edgeclf.core.config import load_config
    from edgeclf.experiments.sweep import PRUNING_STUDY, open_pruning_study
    from edgeclf.experiments.trial import RESULT, run_trial
    from tests.helpers import class_folders

    space = load_space(_space(tmp_path, "prune_startup: 2\nprune_warmup: 1\nparams:\n  model.alpha: [0.25]\n"))
    study = open_pruning_study(tmp_path, space)
    for _ in range(2):  # two earlier trials with a validation loss no real training reaches
        done = study.ask()
        for epoch in range(6):
            done.report(1e-6, epoch)
        study.tell(done, 1e-6)
    twin = study.ask()
    data = class_folders(tmp_path / "data", ["bag", "sneaker", "trouser"], 20)
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    cfg = load_config(
        overrides={
            "model.name": "small_cnn",
            "model.alpha": 0.25,
            "model.weights": "none",
            "data.image_size": 32,
            "train.epochs": 6,
            "train.fine_tune_epochs": 0,
        }
    )
    (trial_dir / "config.yaml").write_text(cfg.to_yaml())
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    pruning = (storage, PRUNING_STUDY, twin.number, 2, 1)
    assert run_trial(data, trial_dir, qat=False, runs=10, threads=1, pruning=pruning) is None
    result = json.loads((trial_dir / RESULT).read_text())
    assert result["pruned"] and result["reason"].startswith("epoch 2: validation loss")  # after 1 warm-up epoch
    reported = optuna.load_study(study_name=PRUNING_STUDY, storage=storage).trials[2].intermediate_values
    assert sorted(reported) == [0, 1] and not (trial_dir / "run").exists()


@pytest.mark.parametrize(
    "space_text, args, message",
    [
        ("sampler: grid\nparams:\n  model.alpha: [0.35, 0.5]\n", ["--trials", "5"], "the grid has 2 combinations"),
        ("params: [\n", [], "not valid YAML"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
            [],
            "nodes with its aliases expanded",
        ),
        ("base:\n" + "  " * 0 + "x: " + "[" * 5000 + "]" * 5000 + "\n", [], "nested over 64 levels deep"),
    ],
)
def test_a_refused_sweep_leaves_no_out_folder(tmp_path, space_text, args, message):
    """Before: a sweep refused for its --trials left an empty --out behind; a YAML alias bomb turned
    the one-line error into a 312 MB repr, and deep nesting gave RecursionError (issue 21)."""
    from typer.testing import CliRunner

    from edgeclf.cli import app
    from tests.helpers import class_folders

    data = class_folders(tmp_path / "d", ["bag", "sneaker"], 3)
    space = tmp_path / "space.yaml"
    space.write_text(space_text)
    out = tmp_path / "sweep"
    result = CliRunner().invoke(app, ["sweep", str(data), "--space", str(space), "--out", str(out), *args])
    assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    assert message in result.output and len(result.output) < 400 and "Traceback" not in result.output
    assert not out.exists()


def test_compare_over_a_run_benched_without_batch_1(tiny_run, tmp_path):
    """Before: `next(...)` raised StopIteration (a traceback) when bench ran with --batch-sizes 8;
    the row takes the batch every report headlines (runtime.timing.headline_batch, issue 22)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "reports").mkdir(exist_ok=True)
    batches = [{"batch": 8, "p50_ms": 0.8, "p99_ms": 1.2}, {"batch": 16, "p50_ms": 1.5, "p99_ms": 2.0}]
    (run / "reports" / "bench.json").write_text(json.dumps({"artifacts": {"tflite-int8-ptq": {"batches": batches}}}))
    (row,) = collect([run])
    assert (row.p50_ms, row.p99_ms) == (0.8, 1.2)
