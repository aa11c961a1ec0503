"""edgeclf.training.fit.build_training_state: the training step is traced once, not twice."""

import numpy as np
import pytest

from edgeclf.training.fit import build_training_state

keras = pytest.importorskip("tf_keras")


def _model():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, "softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("prebuilt, traces", [(True, 1), (False, 2)])
def test_a_training_step_that_creates_no_variables_is_traced_once(prebuilt, traces):
    """TensorFlow traces a tf.function twice when its first call creates variables (the optimizer's
    slots, the compiled metrics); a MobileNet's step costs seconds per trace on 2 cores."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 6)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 10)]
    model = _model()
    if prebuilt:
        build_training_state(model)
    history = model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), verbose=0)
    assert model.train_function.experimental_get_tracing_count() == traces
    assert len(history.history["val_loss"]) == 2 and np.isfinite(history.history["loss"]).all()
