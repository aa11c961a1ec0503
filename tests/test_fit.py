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


def _two_phases(restart: bool):
    """Two fits at different rates on the same variables: the second either on a fresh compile (a new
    Adam) or on the compiled step restarted by restart_training_state."""
    from edgeclf.training.fit import restart_training_state

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)).astype("float32"), np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    model, traced_for = _model(), []
    assert not restart_training_state(model, 1e-3, traced_for)  # nothing traced yet: the caller compiles
    build_training_state(model)
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    if not (restart and restart_training_state(model, 1e-4, traced_for)):
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy", metrics=["accuracy"])
        build_training_state(model)
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    return model, history.history["loss"]


def test_a_phase_on_the_same_variables_restarts_the_compiled_step_as_a_new_optimizer_would():
    restarted, restarted_loss = _two_phases(restart=True)
    compiled, compiled_loss = _two_phases(restart=False)
    assert restarted.train_function.experimental_get_tracing_count() == 1  # not traced again for phase 2
    assert compiled.train_function.experimental_get_tracing_count() == 1  # a new function after compile
    assert float(restarted.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    assert int(restarted.optimizer.iterations.numpy()) == int(compiled.optimizer.iterations.numpy()) == 8
    np.testing.assert_allclose(restarted_loss, compiled_loss, rtol=1e-5)
    for a, b in zip(restarted.get_weights(), compiled.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_phase_training_other_variables_is_compiled_again():
    from edgeclf.training.fit import restart_training_state

    model, traced_for = _model(), []
    restart_training_state(model, 1e-3, traced_for)
    model.fit(np.zeros((4, 6), "float32"), np.eye(3, dtype="float32")[[0, 1, 2, 0]], epochs=1, verbose=0)
    model.layers[0].trainable = False  # the next phase trains fewer variables
    assert not restart_training_state(model, 1e-4, traced_for)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)  # untouched
