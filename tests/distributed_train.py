"""One training process for the distributed tests (run as `python -m tests.distributed_train`):
`DATA OUT STRATEGY [LOGICAL_CPUS [OVERRIDES_JSON]]` trains; `qat RUN STRATEGY [LOGICAL_CPUS]` runs one
QAT epoch on a run; `resume DATA OUT` continues an interrupted run (edgeclf train --resume). Splits the
CPU into LOGICAL_CPUS logical devices before anything starts TensorFlow's runtime and prints the result
as JSON. TF_CONFIG (multiworker) comes from the environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from tests.recipes import TINY_CNN  # noqa: E402 (after the environment TensorFlow reads)


def main() -> None:
    if sys.argv[1] == "qat":
        run, strategy = Path(sys.argv[2]), sys.argv[3]
        _split_cpu(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
        from edgeclf.training.qat import run_qat

        result = run_qat(run, overrides={"qat.epochs": 1, "train.strategy": strategy})
        print(json.dumps({"qat_val_accuracy": result.qat_val_accuracy, "wrote": result.wrote}))
        return
    if sys.argv[1] == "resume":
        from edgeclf.training.train import resume_run

        result = resume_run(Path(sys.argv[3]), sys.argv[2])
        print(json.dumps({"val_loss": result.val_loss, "wrote_run": result.wrote_run}))
        return
    data, out, strategy = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    _split_cpu(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    from edgeclf.core.config import load_config
    from edgeclf.training.train import train

    cfg = load_config(overrides={**TINY_CNN, **extra, "train.strategy": strategy})
    result = train(Path(data), out, cfg)
    print(json.dumps({"val_loss": result.val_loss, "val_accuracy": result.val_accuracy, "wrote_run": result.wrote_run}))


def _split_cpu(logical: int) -> None:
    if logical > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical)


if __name__ == "__main__":
    main()
