"""Grad-CAM (edgeclf.measure.explain) and `edgeclf explain`."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.core.run_directory import Run
from edgeclf.data.decoded import DecodedSplit

pytest.importorskip("tf_keras")
runner = CliRunner()


def test_gradcam_maps_the_answer_over_the_image(tiny_run):
    """One map per image at the input size, 0..1 with its peak at 1, for the class asked (the
    top-1 by default), whose probability is the model's."""
    from edgeclf.measure.explain import GradCam
    from edgeclf.measure.keras_baseline import compiled_predict
    from edgeclf.training.models import load_model

    run = Run.open(tiny_run)
    model = load_model(run.model_path)
    with DecodedSplit(run, "test") as split:
        pixels, labels = split.take([0, 9, 18]), split.labels[[0, 9, 18]]
    probs = compiled_predict(model)(pixels.astype(np.float32))
    top = GradCam(model)(pixels)
    asked = GradCam(model)(pixels, labels=(labels + 1) % 3)
    for i, (e, other) in enumerate(zip(top, asked, strict=True)):
        assert e.heatmap.shape == (32, 32) and 0 <= e.heatmap.min() and e.heatmap.max() == pytest.approx(1, abs=1e-5)
        assert e.label == probs[i].argmax() and e.probability == pytest.approx(probs[i].max(), abs=1e-4)
        assert other.label == (labels[i] + 1) % 3 and other.probability == pytest.approx(
            probs[i, other.label], abs=1e-4
        )


def test_explain_writes_one_overlay_per_image_and_refuses_a_bad_one_in_one_line(tiny_run, tmp_path):
    dataset = Run.open(tiny_run).dataset
    images = [str(dataset.root / r.path) for r in dataset.split("test")[:2]]
    out = tmp_path / "explained"
    result = runner.invoke(app, ["explain", str(tiny_run), *images, "--out", str(out), "--size", "96"])
    assert result.exit_code == 0, result.output
    written = sorted(out.glob("*_gradcam.png"))
    assert len(written) == 2 and all(Image.open(p).size == (96, 96) for p in written)
    assert all(f"{image}: " in result.output for image in images)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = runner.invoke(app, ["explain", str(tiny_run), images[0], str(bad), "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith(f"error: {bad}: ")
    assert not (tmp_path / "none").exists()  # nothing written before every image decoded
