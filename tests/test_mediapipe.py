"""MediaPipe Tasks' ImageClassifier reads our .tflite metadata: labels (and, for float input, the
normalisation). mediapipe's pins clash with tfmot's, so it lives in its own environment
(.venv-mediapipe, made by `make test`, or EDGECLF_MEDIAPIPE_PYTHON); the test skips without it."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgeclf.run import Run
from edgeclf.runtime import read_artifacts
from tests.conftest import CLASSES

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(os.environ.get("EDGECLF_MEDIAPIPE_PYTHON", ROOT / ".venv-mediapipe" / "bin" / "python"))


@pytest.mark.skipif(not PYTHON.exists(), reason=f"no MediaPipe environment at {PYTHON}")
@pytest.mark.parametrize("name", ["tflite-fp32", "tflite-int8-qat", "tflite-int8-ptq"])
def test_mediapipe_image_classifier_returns_our_class_names(exported, name):
    run, _ = exported
    artifact = {a.name: a for a in read_artifacts(run)}[name]
    dataset = Run.open(run).dataset
    images = [str(dataset.root / r.path) for r in dataset.split("val")]
    proc = subprocess.run([str(PYTHON), str(ROOT / "tools" / "mediapipe_classify.py"), str(run / artifact.path), *images],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(images)
    for result in results:
        names = [name for name, _ in result["categories"]]
        assert len(names) == 3 and set(names) == set(CLASSES)  # our labels, from the file's metadata
        scores = [score for _, score in result["categories"]]
        assert scores == sorted(scores, reverse=True) and 0.98 <= sum(scores) <= 1.02
