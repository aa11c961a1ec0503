"""The tiny training recipes the tests train with, in one place, as configuration overrides (dotted
keys); `as_options` gives a recipe as the `edgeclf train` options that set those keys. Small enough
to train in seconds on 2 CPU cores; none is meant to be accurate except FIXTURE and FROM_SCRATCH."""

from __future__ import annotations

# MobileNetV2 at its smallest: random weights, 32 px (its last feature map is 1x1), one epoch per phase
TINY_MOBILENET = {
    "data.image_size": 32,
    "data.batch_size": 8,
    "model.alpha": 0.35,
    "model.weights": "none",
    "train.epochs": 1,
    "train.fine_tune_epochs": 1,
}

# the small CNN, one epoch: what the multi-worker and resume tests run in several processes at once
TINY_CNN = {
    "seed": 3,
    "data.image_size": 32,
    "data.batch_size": 16,
    "model.name": "small_cnn",
    "model.alpha": 0.25,
    "model.weights": "none",
    "train.epochs": 1,
    "train.fine_tune_epochs": 0,
    "train.learning_rate": 0.003,
    "train.precise_bn_batches": 2,
}

# the committed fixture run (tests/fixtures/make_tiny_run.py): small_cnn trained until it is accurate
FIXTURE = {
    "seed": 1,
    "data.image_size": 32,
    "data.batch_size": 16,
    "model.name": "small_cnn",
    "model.alpha": 0.25,
    "model.weights": "none",
    "train.epochs": 8,
    "train.fine_tune_epochs": 0,
    "train.learning_rate": 0.003,
    "export.calibration_images": 42,
    "export.parity_spread_images": 27,
}

# MobileNetV2 from random weights on 4 classes x 60 images (tests/from_scratch.py)
FROM_SCRATCH = {
    "data.image_size": 32,
    "data.batch_size": 16,
    "model.alpha": 0.35,
    "model.weights": "none",
    "train.epochs": 8,
    "train.fine_tune_epochs": 0,
    "train.learning_rate": 0.003,
    "augment.enabled": False,
}


def as_options(recipe: dict, command: str = "train", *, settable_only: bool = False) -> list[str]:
    """The recipe as command-line options of `edgeclf COMMAND` (each key through the option that
    sets it); KeyError for a key the command has no option for, unless settable_only (then such a
    key keeps its default: say so where it matters)."""
    from edgeclf.cli import app

    callback = next(c.callback for c in app.registered_commands if c.name == command)
    import inspect

    option = {
        p.default.config_key: p.default.param_decls[0] if p.default.param_decls else "--" + n.replace("_", "-")
        for n, p in inspect.signature(callback).parameters.items()
        if getattr(p.default, "config_key", None)
    }
    kept = {k: v for k, v in recipe.items() if k in option or not settable_only}
    return [part for key, value in kept.items() for part in (option[key], str(value))]
