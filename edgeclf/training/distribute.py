"""Where training runs: TensorFlow's own distribution strategies, chosen by `train.strategy`.

  none         the default strategy: one device (the first GPU, else the CPU)
  mirrored     tf.distribute.MirroredStrategy over this machine's GPUs (with no GPU: over its logical
               CPU devices, which is how the tests run it); variables mirrored, gradients all-reduced
  multiworker  tf.distribute.MultiWorkerMirroredStrategy across the machines TF_CONFIG lists; every
               worker runs `edgeclf train` with the same arguments and its own TF_CONFIG, and only the
               chief (task type chief, else worker 0) writes the run directory
  auto         multiworker when TF_CONFIG lists more than one task, mirrored when more than one GPU is
               visible, else none

Batch size and learning rate (the run's metadata records both, as applied):
  data.batch_size is the global batch (all replicas together) with train.batch_size_per: global, or
  each replica's with train.batch_size_per: replica (global = batch_size x replicas);
  train.learning_rate_scaling: linear multiplies both phases' learning rates by the number of replicas
  (Goyal et al., 2017: for a global batch that grows with the replicas), none leaves them.

Input sharding across workers: a pack with at least as many training shards as workers is sharded by
file (AutoShardPolicy.FILE: each worker reads its own shards); anything else by data (DATA: every
worker reads the whole input and keeps its share: pack the data for multi-worker training).

The strategy must exist before TensorFlow's runtime starts (MultiWorkerMirroredStrategy's rule):
`place()` is called first thing in training. Reading TF_CONFIG needs no TensorFlow (`role`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from edgeclf.core.errors import ConfigError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")


@dataclass(frozen=True)
class Role:
    """This process's place in TF_CONFIG's cluster (one worker, the chief, when there is none)."""

    workers: int
    task_type: str
    task_index: int
    has_chief: bool = False  # the cluster has a "chief" task (else worker 0 is the chief)

    @property
    def chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_index == 0 and not self.has_chief)

    def describe(self) -> str:
        return f"{self.task_type} {self.task_index} of {self.workers} task(s)"


def role(environ: dict | None = None) -> Role:
    """Parse TF_CONFIG (bounded; a ConfigError naming it when malformed)."""
    text = (environ if environ is not None else os.environ).get("TF_CONFIG", "")
    if not text:
        return Role(1, "worker", 0)
    if len(text) > 1_000_000:
        raise ConfigError("TF_CONFIG: over 1 MB; not a cluster description")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        tasks = {kind: len(list(addresses)) for kind, addresses in cluster.items() if kind in ("chief", "worker")}
        task_type, task_index = str(task["type"]), int(task["index"])
        if task_type not in tasks or not 0 <= task_index < tasks[task_type]:
            raise ValueError(f"task {task_type} {task_index} is not in the cluster")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"TF_CONFIG: not a usable cluster description ({exc}); expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    return Role(sum(tasks.values()), task_type, task_index, has_chief="chief" in tasks)


def writes_run(name: str, role_: Role) -> bool:
    """Whether this process writes the run directory: always, except on a multi-worker cluster's
    non-chief workers (they train alongside the chief and keep nothing)."""
    return role_.chief or name not in ("auto", "multiworker") or role_.workers == 1


@dataclass
class Placement:
    """The strategy training runs under, and what the run's metadata says about it."""

    strategy: object  # tf.distribute.Strategy
    name: str  # none | mirrored | multiworker
    replicas: int
    role: Role
    devices: list[str]

    def scope(self):
        return self.strategy.scope()


def resolve(name: str, gpus: int, role_: Role) -> str:
    """The strategy `auto` stands for here (others as given)."""
    if name not in STRATEGIES:
        raise ConfigError(f"train.strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    if name != "auto":
        return name
    if role_.workers > 1:
        return "multiworker"
    return "mirrored" if gpus > 1 else "none"


def place(name: str) -> Placement:
    """Create the strategy (before anything else starts TensorFlow's runtime)."""
    import tensorflow as tf

    role_ = role()
    gpus = tf.config.list_physical_devices("GPU")
    chosen = resolve(name, len(gpus), role_)
    if chosen == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError(
                "train.strategy multiworker: TF_CONFIG is not set; set it on every worker (docs/SCALING.md)"
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif chosen == "mirrored":
        if role_.workers > 1:
            raise ConfigError("train.strategy mirrored: TF_CONFIG lists several workers; use multiworker")
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        strategy = tf.distribute.get_strategy()
    if chosen == "none":  # the default strategy has no device list
        devices = [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[:1]]
    else:
        devices = list(strategy.extended.worker_devices)
    return Placement(strategy, chosen, int(strategy.num_replicas_in_sync), role_, devices)


def batch_sizes(batch_size: int, per: str, replicas: int) -> tuple[int, int]:
    """(global, per replica) batch sizes for data.batch_size read as `per` (global | replica)."""
    if per == "replica":
        return batch_size * replicas, batch_size
    if batch_size % replicas:
        raise ConfigError(
            f"data.batch_size {batch_size}: not a multiple of the {replicas} replicas; "
            f"use a multiple of {replicas}, or train.batch_size_per: replica"
        )
    return batch_size, batch_size // replicas


def with_global_batch(cfg, replicas: int):
    """cfg with data.batch_size set to the global batch the input pipelines must produce (Keras splits
    each batch across the replicas)."""
    global_batch, _ = batch_sizes(cfg.data.batch_size, cfg.train.batch_size_per, replicas)
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"batch_size": global_batch})})


def input_sharding(data, workers: int) -> dict[str, str]:
    """How each split's input is divided across workers: "file" for a packed split with at least
    one shard per worker, else "data" (see the module docstring). data: an edgeclf Dataset."""
    shards: dict[str, int] = {}
    if data.pack is not None:
        from edgeclf.data.packed import open_pack

        shards = {split: len(listed) for split, listed in open_pack(data.pack).shards.items()}
    return {split: "file" if shards.get(split, 0) >= workers else "data" for split in ("train", "val")}


def sharded(datasets, sharding: dict[str, str]):
    """The (training, validation) tf.data pipelines with their auto-shard policy set (it applies only
    under a multi-worker strategy)."""
    import tensorflow as tf

    policy = tf.data.experimental.AutoShardPolicy
    out = []
    for split, ds in zip(("train", "val"), datasets, strict=True):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = policy.FILE if sharding[split] == "file" else policy.DATA
        out.append(ds.with_options(options))
    return tuple(out)
