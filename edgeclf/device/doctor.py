"""`edgeclf doctor`: what this machine can run, and each problem in one line with what to do.

It never imports TensorFlow into its own process (it runs on a device install too): package
versions come from the installed distributions' metadata; what TensorFlow's Keras is, and which GPUs
TensorFlow sees, from a short child process that imports TensorFlow with the environment as it is
(bounded in time and in what it may print). ONNX Runtime's providers and OpenVINO's devices are
asked of the engines themselves, which the device side imports anyway.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from edgeclf.runtime.backends import engine_available
from edgeclf.runtime.machine import cpuinfo_fields

# distributions reported, training side first
PACKAGES = (
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "nncf",
    "ai-edge-litert",
    "onnxruntime",
    "openvino",
    "numpy",
)
TRAINING = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx")
# what each ISA flag of /proc/cpuinfo means for an int8 or bf16 model
ISA = {
    "avx512_vnni": "AVX-512 VNNI (int8 dot products)",
    "avx_vnni": "AVX-VNNI (int8 dot products)",
    "avx512_bf16": "AVX-512 BF16",
    "amx_int8": "AMX int8",
    "amx_bf16": "AMX bf16",
    "asimddp": "NEON dot product (int8)",
    "i8mm": "int8 matrix multiply (Arm)",
    "bf16": "bf16 (Arm)",
}
PROBE_SECONDS = 120
PROBE = """
import json, os
import tensorflow as tf
out = {"tensorflow": tf.__version__, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}
try:
    module = tf.keras.__name__  # tf_keras... (Keras 2) or keras... (Keras 3)
    if module.startswith("tf_keras"):
        import tf_keras as keras
    else:
        import keras
    out["keras"] = keras.__version__
except Exception as exc:
    out["keras_error"] = " ".join(str(exc).split())[:200]
print("EDGECLF_PROBE " + json.dumps(out))
"""


@dataclass
class Check:
    name: str
    status: str  # ok | info | warn | fail
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    packages: dict[str, str | None] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def to_json(self) -> dict:
        return {"packages": self.packages, "checks": [asdict(c) for c in self.checks], "failed": len(self.failed)}


def diagnose(training: bool, folder: Path, probe: bool = True) -> DoctorReport:
    """Every check; training: the training side is asked for (its problems are failures, not
    warnings). probe: import TensorFlow in a child process to see its Keras and GPUs."""
    report = DoctorReport(packages={name: _version(name) for name in PACKAGES})
    add = report.checks.append
    add(_python())
    add(Check("packages", "info", ", ".join(f"{n} {v}" for n, v in report.packages.items() if v) or "none"))
    for check in _training_side(report.packages, training, probe):
        add(check)
    for check in _engines():
        add(check)
    add(_cpu())
    add(_disk(folder))
    return report


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _python() -> Check:
    version = platform.python_version()
    if sys.version_info[:2] != (3, 11):
        return Check(
            "python",
            "warn",
            f"Python {version}: the device runner works on 3.10 and later; the training pins are tested on 3.11",
            "use Python 3.11 for training (make install does)",
        )
    return Check("python", "ok", f"Python {version}")


def _training_side(packages: dict, training: bool, probe: bool) -> list[Check]:
    """The training packages, tf-keras against TensorFlow, and (probe) the Keras TensorFlow gives."""
    bad = "fail" if training else "info"
    missing = [n for n in TRAINING if not packages.get(n)]
    if missing:
        return [
            Check(
                "training side",
                bad,
                f"not installed: {', '.join(missing)} (the device commands do not need them)",
                "pip install 'edgeclf[train]' to train, quantize and export here",
            )
        ]
    checks = []
    tf, keras = packages["tensorflow"], packages["tf-keras"]
    if tf.split(".")[:2] != keras.split(".")[:2]:
        checks.append(
            Check(
                "keras",
                bad,
                f"tf-keras {keras} does not match tensorflow {tf}",
                f"pip install 'tf-keras=={'.'.join(tf.split('.')[:2])}.*'",
            )
        )
    if not probe:
        return checks or [Check("training side", "ok", f"tensorflow {tf}, tf-keras {keras}")]
    result = _probe()
    if "error" in result:
        return [
            *checks,
            Check("tensorflow", bad, f"importing TensorFlow failed: {result['error']}", "reinstall: make install"),
        ]
    checks.append(_keras_in_effect(result, bad))
    gpus = result.get("gpus") or []
    checks.append(Check("gpu (tensorflow)", "info", ", ".join(gpus) if gpus else "none seen: training runs on the CPU"))
    return checks


def _keras_in_effect(result: dict, bad: str) -> Check:
    """What tf.keras is with this environment: edgeclf itself sets TF_USE_LEGACY_KERAS=1 before it
    imports TensorFlow, but a script or notebook that imports TensorFlow first gets what the
    environment says, and tfmot cannot quantize Keras 3."""
    flag = os.environ.get("TF_USE_LEGACY_KERAS", "unset")
    if "keras_error" in result:
        return Check(
            "keras",
            bad,
            f"tf.keras cannot be imported with TF_USE_LEGACY_KERAS={flag}: {result['keras_error']}",
            "pip install 'tf-keras==<your tensorflow's major.minor>.*'",
        )
    version = result.get("keras", "")
    if version.startswith("2."):
        return Check("keras", "ok", f"Keras 2 (tf-keras {version}) is in effect; TF_USE_LEGACY_KERAS={flag}")
    return Check(
        "keras",
        "warn",
        f"Keras 3 ({version}) is in effect for TensorFlow imported with this environment (TF_USE_LEGACY_KERAS="
        f"{flag}); edgeclf sets it for its own commands, but tfmot cannot quantize Keras 3 models made elsewhere",
        "export TF_USE_LEGACY_KERAS=1 before Python starts (in a notebook: before importing tensorflow)",
    )


def _probe() -> dict:
    """Import TensorFlow in a child process, with this environment; its answer or {"error": ...}."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=PROBE_SECONDS, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {PROBE_SECONDS} s"}
    lines = [line for line in proc.stdout[-20000:].splitlines() if line.startswith("EDGECLF_PROBE ")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last[:200]}
    return json.loads(lines[-1][len("EDGECLF_PROBE ") :])


def _engines() -> list[Check]:
    checks = []
    for engine, package, fix in (
        ("litert", "ai-edge-litert", "pip install ai-edge-litert"),
        ("onnxruntime", "onnxruntime", "pip install onnxruntime"),
        ("openvino", "openvino", "pip install 'edgeclf[openvino]'"),
    ):
        if not engine_available(engine):
            checks.append(
                Check(f"engine {engine}", "warn", f"{package} is not installed: its artifacts cannot run here", fix)
            )
            continue
        checks.append(Check(f"engine {engine}", "ok", _engine_detail(engine)))
    return checks


def _engine_detail(engine: str) -> str:
    """What the engine offers here: ONNX Runtime's providers, OpenVINO's devices."""
    try:
        if engine == "onnxruntime":
            import onnxruntime as ort

            return f"onnxruntime {ort.__version__}, providers: {', '.join(ort.get_available_providers())}"
        if engine == "openvino":
            import openvino as ov

            return f"openvino {ov.__version__}, devices: {', '.join(ov.Core().available_devices)}"
    except Exception as exc:  # an engine that fails to start is reported, not raised
        return f"installed, but it failed to start: {' '.join(str(exc).split())[:160]}"
    return "installed"


def _cpu() -> Check:
    text = Path("/proc/cpuinfo").read_text(errors="replace")[:1_000_000] if Path("/proc/cpuinfo").exists() else ""
    fields = cpuinfo_fields(text)
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or platform.processor() or platform.machine()
    found = [meaning for flag, meaning in ISA.items() if flag in flags]
    detail = f"{model}, {os.cpu_count()} logical cores; " + (", ".join(found) if found else "no int8/bf16 extensions")
    return Check("cpu", "info", detail)


def _disk(folder: Path) -> Check:
    free = shutil.disk_usage(folder).free / 2**30
    if free < 2:
        return Check(
            "disk", "warn", f"{free:.1f} GiB free in {folder}", "free some space: a run with exports takes ~1 GiB"
        )
    return Check("disk", "ok", f"{free:.1f} GiB free in {folder}")
