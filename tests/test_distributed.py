"""Distributed training on tf.distribute, on the CPU: MirroredStrategy over 2 logical CPU devices,
and a 2-worker MultiWorkerMirroredStrategy on loopback ports (two processes). Each training runs in a
child process (logical devices and the multi-worker strategy must be set before TensorFlow starts),
bounded in time. Also the strategy's settings: TF_CONFIG, batch sizes, who writes the run."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeclf.core.config import load_config
from edgeclf.core.errors import ConfigError
from edgeclf.training.distribute import Role, batch_sizes, resolve, role, writes_run
from tests.helpers import class_folders

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds per training process; each takes about 10 s on 2 cores


def _train(data, out, strategy, logical=1, overrides=None, env=None, wait=True):
    return _child([str(data), str(out), strategy, str(logical), json.dumps(overrides or {})], env, wait)


def _qat(run, strategy, logical=1, env=None, wait=True):
    return _child(["qat", str(run), strategy, str(logical)], env, wait)


def _child(args: list[str], env: dict | None, wait: bool):
    command = [sys.executable, "-m", "tests.distributed_train", *args]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"} | (env or {})
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _finish(proc) if wait else proc


def _finish(proc) -> dict:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("a training process did not finish in time") from None
    noise = ("I0000", "W0000", "E0000", "WARNING: All log messages")
    assert proc.returncode == 0, "\n".join(line for line in err.splitlines() if not line.startswith(noise))[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("distributed") / "data", ["bag", "sneaker", "trouser"], 40)


def _distribution(run: Path) -> dict:
    return json.loads((run / "metadata.json").read_text())["training"]["distribution"]


@pytest.mark.slow
def test_distributed_mirrored_over_two_devices_matches_one_device(data, tmp_path):
    """From the fixture run's weights (BatchNorm frozen), without dropout or augmentation, a global
    batch of 16 split over 2 replicas computes the same mean gradient as one device: the same
    losses epoch by epoch, up to the order of float additions."""
    same = {
        "model.weights": str(ROOT / "tests/fixtures/tiny_run"),
        "model.dropout": 0.0,
        "augment.enabled": False,
        "train.epochs": 2,
    }
    one = _train(data, tmp_path / "one", "none", 1, same)
    two = _train(data, tmp_path / "two", "mirrored", 2, same)
    assert _distribution(tmp_path / "one")["replicas"] == 1
    assert _distribution(tmp_path / "two") | {"devices": None} == {
        "strategy": "mirrored",
        "asked": "mirrored",
        "replicas": 2,
        "workers": 1,
        "devices": None,
        "batch_size_per": "global",
        "global_batch_size": 16,
        "per_replica_batch_size": 8,
        "learning_rate_scaling": "none",
        "learning_rate_scale": 1,
        "input_sharding": {"train": "data", "val": "data"},
    }
    rows = [(tmp_path / name / "history.csv").read_text().splitlines()[1:] for name in ("one", "two")]
    for a, b in zip(*rows, strict=True):
        losses = [float(v) for v in a.split(",")[2:6]], [float(v) for v in b.split(",")[2:6]]
        assert losses[0] == pytest.approx(losses[1], rel=1e-4, abs=1e-5)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)


@pytest.mark.slow
def test_distributed_mirrored_trains_from_scratch_with_per_replica_batches(data, tmp_path):
    """BatchNorm training per replica, PreciseBN, batch_size_per: replica and linear scaling."""
    per_replica = {"train.batch_size_per": "replica", "data.batch_size": 8, "train.learning_rate_scaling": "linear"}
    result = _train(data, tmp_path / "run", "mirrored", 2, per_replica)
    d = _distribution(tmp_path / "run")
    assert (d["global_batch_size"], d["per_replica_batch_size"], d["learning_rate_scale"]) == (16, 8, 2)
    phases = json.loads((tmp_path / "run/metadata.json").read_text())["training"]["phases"]
    assert phases[0]["learning_rate"] == pytest.approx(0.006)
    assert result["val_accuracy"] > 0.34 and (tmp_path / "run/model.keras").is_file()
    qat = _qat(tmp_path / "run", "mirrored", 2)  # QAT (tfmot's wrappers) under the same strategy
    summary = json.loads((tmp_path / "run/qat.json").read_text())
    assert qat["wrote"] and (summary["strategy"], summary["replicas"]) == ("mirrored", 2)
    assert (tmp_path / "run/qat_model.h5").is_file() and summary["epochs_run"] == 1
    assert {"load and wrap the model", "calibrate activation ranges", "fine-tune (1 epochs)"} <= set(summary["timings"])


def _together(procs) -> list[dict]:
    try:
        return [_finish(p) for p in procs]
    finally:  # one failing leaves the other waiting on its collectives: stop both
        for p in procs:
            p.kill()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_distributed_two_workers_on_loopback_and_the_chief_writes_the_run(data, tmp_path):
    from edgeclf.data.packed import pack
    from edgeclf.data.prepare import prepare_folder

    packed = tmp_path / "pack"
    cfg = load_config(overrides={"seed": 3, "data.image_size": 32, "pack.shards": 4})
    pack(prepare_folder(data, cfg), packed, 32, cfg.pack, seed=1)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    out = tmp_path / "run"
    configs = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in (0, 1)]
    chief, worker = _together([_train(packed, out, "auto", env=env, wait=False) for env in configs])
    assert chief["wrote_run"] and not worker["wrote_run"]
    assert chief["val_loss"] == pytest.approx(worker["val_loss"])  # one model, reduced across the workers
    chief, worker = _together([_qat(out, "auto", env=env, wait=False) for env in configs])  # run on a shared disk
    assert chief["wrote"] and not worker["wrote"] and (out / "qat_model.h5").is_file()
    assert json.loads((out / "qat.json").read_text())["strategy"] == "multiworker"
    d = _distribution(out)
    assert (d["strategy"], d["asked"], d["workers"], d["replicas"]) == ("multiworker", "auto", 2, 2)
    assert d["input_sharding"] == {"train": "file", "val": "data"}  # 4 training shards, 1 validation shard
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "curves.png",
        "dataset.json",
        "history.csv",
        "labels.txt",
        "logs",
        "metadata.json",
        "model.keras",
        "qat.json",
        "qat_model.h5",
    ]
    # TensorBoard's logs: the chief's alone (the other worker writes into a folder it removes)
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["qat", "train"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".run", "workertemp"))]


def test_tf_config_gives_the_role_and_refuses_a_broken_one():
    assert role({}) == Role(1, "worker", 0) and role({}).chief
    two = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert (
        role({"TF_CONFIG": json.dumps(two)}) == Role(2, "worker", 1) and not role({"TF_CONFIG": json.dumps(two)}).chief
    )
    with_chief = {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}
    assert not role({"TF_CONFIG": json.dumps(with_chief)}).chief  # worker 0 is not the chief when there is one
    assert role({"TF_CONFIG": json.dumps({**with_chief, "task": {"type": "chief", "index": 0}})}).chief
    for broken in (
        "{",
        json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
        json.dumps({"task": {"type": "worker", "index": 0}}),
    ):
        with pytest.raises(ConfigError, match="TF_CONFIG: not a usable cluster description"):
            role({"TF_CONFIG": broken})


def test_auto_strategy_batch_sizes_and_sharding():
    one, cluster = Role(1, "worker", 0), Role(3, "worker", 2)
    assert resolve("auto", 0, one) == "none" and resolve("auto", 1, one) == "none"
    assert resolve("auto", 2, one) == "mirrored" and resolve("auto", 0, cluster) == "multiworker"
    assert resolve("none", 8, cluster) == "none"
    with pytest.raises(ConfigError, match="train.strategy 'ring'"):
        resolve("ring", 0, one)
    assert batch_sizes(32, "global", 4) == (32, 8) and batch_sizes(32, "replica", 4) == (128, 32)
    with pytest.raises(ConfigError, match="data.batch_size 30: not a multiple of the 4 replicas"):
        batch_sizes(30, "global", 4)
    assert (
        writes_run("auto", cluster) is False and writes_run("none", cluster) and writes_run("auto", Role(3, "chief", 0))
    )


@pytest.mark.slow
def test_distributed_two_workers_killed_mid_training_resume_from_the_chiefs_state(data, tmp_path):
    """Both workers killed (SIGKILL) after the chief saved epoch 2; `--resume` on both continues from
    the chief's shared stage (progress.json, Keras' backup, the best checkpoint) and the chief writes
    the run with every epoch."""
    import signal

    out = tmp_path / "run"
    slow = {"train.epochs": 12, "train.early_stopping_patience": 20, "train.reduce_lr_patience": 20}
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    configs = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in (0, 1)]
    procs = [_train(data, out, "multiworker", overrides=slow, env=env, wait=False) for env in configs]
    progress = tmp_path / ".run.partial-cluster/progress.json"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        if progress.is_file() and len(json.loads(progress.read_text())["rows"]) >= 2:
            break
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    rows_before = len(json.loads(progress.read_text())["rows"])
    assert 2 <= rows_before < 12 and not out.exists()

    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}  # a fresh cluster
    configs = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in (0, 1)]
    chief, worker = _together([_child(["resume", str(data), str(out)], env, False) for env in configs])
    assert chief["wrote_run"] and not worker["wrote_run"]
    history = (out / "history.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in history] == list(range(1, 13))
    assert not (tmp_path / ".run.partial-cluster").exists()


def test_the_strategy_is_a_checked_setting():
    assert load_config().train.strategy == "auto"
    with pytest.raises(ConfigError, match="train.strategy"):
        load_config(overrides={"train.strategy": "horovod"})


def test_the_kubernetes_job_gives_each_pod_its_tf_config():
    """deploy/cluster: tf_config.py makes the TF_CONFIG edgeclf reads from an Indexed Job's pod, and
    the manifest runs every worker at once with the multi-worker strategy."""
    import yaml

    folder = ROOT / "deploy/cluster"
    env = {
        **os.environ,
        "WORKERS": "3",
        "JOB_COMPLETION_INDEX": "2",
        "JOB_NAME": "edgeclf-train",
        "SERVICE": "edgeclf-train",
        "PORT": "2222",
    }
    show = [sys.executable, "-c", "import os; print(os.environ['TF_CONFIG'])"]
    script = [sys.executable, str(folder / "tf_config.py"), *show]
    proc = subprocess.run(script, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    config = proc.stdout.strip().splitlines()[-1]
    assert role({"TF_CONFIG": config}) == Role(3, "worker", 2)
    assert json.loads(config)["cluster"]["worker"][0] == "edgeclf-train-0.edgeclf-train:2222"
    bad = subprocess.run(script, env={**env, "JOB_COMPLETION_INDEX": "3"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "outside 0..2" in bad.stderr

    service, job = yaml.safe_load_all((folder / "train-job.yaml").read_text())
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    workers = next(e["value"] for e in container["env"] if e["name"] == "WORKERS")
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"] == int(workers)
    assert (
        spec["template"]["spec"]["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    )
    assert container["command"][1].endswith("tf_config.py") and "multiworker" in container["command"]
