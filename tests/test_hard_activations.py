"""MobileNetV3 built of quantizable hard-swish layers (edgeclf.training.hard_activations): the same
weights and arithmetic as Keras' own MobileNetV3, and QAT that exports a full-integer TFLite."""

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeclf.cli import app
from edgeclf.runtime import read_artifacts

pytest.importorskip("tensorflow_model_optimization")
runner = CliRunner()


def _keras_v3(name: str, ours: bool):
    import tf_keras as keras

    from edgeclf.training.hard_activations import quantizable_mobilenet_v3

    factory = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}[name]
    with quantizable_mobilenet_v3() if ours else np.errstate():
        return factory(input_shape=(32, 32, 3), include_top=False, weights=None, include_preprocessing=False)


@pytest.mark.parametrize("name", ["small", "large"])
def test_quantizable_v3_has_keras_weights_and_answers(name):
    """The same weighted layers, by name and shape and in the same order (ImageNet weights and
    --weights FILE load onto them as before), no TFOpLambda layer, and the same outputs for the same
    weights; Keras' own functions are restored afterwards."""
    from edgeclf.training.hard_activations import HardSigmoid, HardSwish, has_op_layers

    theirs, ours = _keras_v3(name, ours=False), _keras_v3(name, ours=True)
    weighted = [
        [(layer.name, [w.shape for w in layer.weights]) for layer in m.layers if layer.weights] for m in (theirs, ours)
    ]
    assert weighted[0] == weighted[1]
    assert has_op_layers(theirs) and not has_op_layers(ours)
    assert any(isinstance(layer, HardSwish) for layer in ours.layers)
    assert any(isinstance(layer, HardSigmoid) for layer in ours.layers)
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), atol=1e-4)
    assert has_op_layers(_keras_v3(name, ours=False))  # the module's own functions are back


@pytest.mark.slow  # train, QAT and export of a tiny MobileNetV3: about a minute each
@pytest.mark.parametrize("model", ["mobilenet_v3_small", "mobilenet_v3_large"])
def test_mobilenet_v3_qat_exports_a_full_integer_tflite(three_classes, tmp_path, model):
    """edgeclf qat trains MobileNetV3 (refused before: tfmot cannot wrap TFOpLambda layers) and its
    int8 TFLite is full-integer: every tensor int8 but the uint8 image input and output, the
    hard-swish as LiteRT's integer HARD_SWISH; it runs and is validated like any other."""
    from edgeclf.export.tflite_repair import full_integer_ops

    run = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", str(three_classes), "--out", str(run), "--model", model, "--image-size", "32", "--weights", "none"]
        + ["--epochs", "1", "--fine-tune-epochs", "0", "--batch-size", "8"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["qat", str(run), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["export", str(run), "--int8", "--formats", "tflite", "--no-repair", "--max-drop", "100"]
    )
    assert result.exit_code == 0, result.output
    entry = {a.name: a for a in read_artifacts(run)}["tflite-int8-qat"]
    assert entry.status == "ok" and entry.validation["check"] == "accuracy_drop"
    ops = full_integer_ops((run / entry.path).read_bytes())
    assert {op["dtype"] for op in ops if op["op"] != "QUANTIZE"} == {"int8"}
    assert "HARD_SWISH" in {op["op"] for op in ops}
