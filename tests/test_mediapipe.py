"""MediaPipe Tasks' ImageClassifier reads our .tflite metadata: labels (and, for float input, the
normalisation). mediapipe's pins clash with tfmot's, so it lives in its own environment
(.venv-mediapipe, made by `make test`, or EDGECLF_MEDIAPIPE_PYTHON); the test skips without it."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgeclf.core.run_directory import Run
from edgeclf.runtime import read_artifacts
from tests.conftest import CLASSES

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(os.environ.get("EDGECLF_MEDIAPIPE_PYTHON", ROOT / ".venv-mediapipe" / "bin" / "python"))


@pytest.mark.skipif(not PYTHON.exists(), reason=f"no MediaPipe environment at {PYTHON}")
@pytest.mark.parametrize("name", ["tflite-fp32", "tflite-int8-qat", "tflite-int8-ptq"])
def test_mediapipe_image_classifier_gives_our_labels_and_our_answers(tiny_run, name, tmp_path):
    """MediaPipe reads the labels (and a float model's normalisation) from the file's metadata and,
    given the same pixels, answers as edgeclf does. The images are handed over already at the input
    size (edgeclf's own preprocessing), so that MediaPipe's resize kernel, which is not ours, does
    not enter the comparison."""
    _same_answers(tiny_run, name, tmp_path)


@pytest.mark.slow  # the repaired run's export
@pytest.mark.skipif(not PYTHON.exists(), reason=f"no MediaPipe environment at {PYTHON}")
def test_mediapipe_reads_a_repaired_int8_file(repaired_run, tmp_path):
    """A repaired int8 file (its head kept in float: edgeclf.export.repair) is read by MediaPipe
    like any other: our labels, our answers."""
    run, result = repaired_run
    assert result.exit_code == 0, result.output
    _same_answers(run, "tflite-int8-ptq-mixed", tmp_path)


def _same_answers(run, name, tmp_path):
    from PIL import Image

    from edgeclf.core.images import load_image
    from edgeclf.runtime.open import open_classifier

    artifact = {a.name: a for a in read_artifacts(run)}[name]
    dataset = Run.open(run).dataset
    images = []
    for k, record in enumerate(dataset.split("val") + dataset.split("test")):
        path = tmp_path / f"{k:03d}.png"
        Image.fromarray(load_image(dataset.root / record.path, artifact.image_size)).save(path)
        images.append(str(path))
    proc = subprocess.run(
        [str(PYTHON), str(ROOT / "tools" / "mediapipe_classify.py"), str(run / artifact.path), *images],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(images)
    ours = open_classifier(run, name).predict_files(images, batch_size=1)
    confident = 0
    for result, probs in zip(results, ours, strict=True):
        names = [label for label, _ in result["categories"]]
        assert len(names) == 3 and set(names) == set(CLASSES)  # our labels, from the file's metadata
        scores = dict(result["categories"])
        assert sum(scores.values()) == pytest.approx(1.0, abs=0.02)
        if artifact.precision == "fp32":  # the same probabilities, so the same answer
            for label, p in zip(CLASSES, probs, strict=True):
                assert abs(scores[label] - p) <= 1e-4, (result["image"], label, scores[label], float(p))
        # MediaPipe runs its own TFLite build, whose integer kernels may round a few 1/256 steps
        # apart from ours: its top-1 must be ours wherever ours is not a near-tie
        top, runner_up = sorted(probs)[-1], sorted(probs)[-2]
        if top - runner_up > (2e-4 if artifact.precision == "fp32" else 0.05):
            assert names[0] == CLASSES[int(probs.argmax())], (result["image"], result["categories"], probs)
            confident += 1
    assert confident >= len(images) * 0.8  # the fixture model is confident on most images: the check bites
