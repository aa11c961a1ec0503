"""Where the model looks: Grad-CAM (Selvaraju et al. 2017) on the float Keras model, with
tf.GradientTape; the report's galleries and `edgeclf explain` draw it over the image.

The feature map is the one the classifier head pools (the input of `head_pool`, the backbone's last
activation); each channel is weighted by the mean gradient of the class's probability over it, the
weighted sum kept where positive, resized to the image and scaled to 0..1 per image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_POOL = "head_pool"  # edgeclf.training.models names the head's GlobalAveragePooling2D so


@dataclass
class Explanation:
    """One image: its pixels (the model's input size), the class explained, its probability and
    the heatmap (HxW, 0..1)."""

    pixels: np.ndarray
    label: int
    probability: float
    heatmap: np.ndarray


class GradCam:
    """Grad-CAM for a run's float Keras model (load it once, explain many batches)."""

    def __init__(self, model):
        import tensorflow as tf
        import tf_keras as keras

        self._tf = tf
        features = model.get_layer(HEAD_POOL).input
        self._model = keras.Model(model.inputs, [features, model.output])

    def __call__(self, pixels: np.ndarray, labels: np.ndarray | None = None) -> list[Explanation]:
        """pixels: uint8 [N,H,W,3]; labels: the class to explain per image (None: the top-1)."""
        tf = self._tf
        x = tf.constant(np.asarray(pixels, np.float32))
        with tf.GradientTape() as tape:
            features, probs = self._model(x, training=False)
            chosen = tf.argmax(probs, axis=1) if labels is None else tf.constant(np.asarray(labels, np.int64))
            score = tf.gather(probs, chosen, axis=1, batch_dims=1)
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
        probs, chosen = probs.numpy(), chosen.numpy()
        out = []
        for i, cam in enumerate(cams):
            heat = tf.image.resize(cam[..., None], pixels.shape[1:3], method="bilinear").numpy()[..., 0]
            peak = float(heat.max())
            heat = heat / peak if peak > 0 else heat
            out.append(Explanation(np.asarray(pixels[i]), int(chosen[i]), float(probs[i, chosen[i]]), heat))
        return out


HEAT_OPACITY = 0.45  # of the heatmap's colours over the image


def overlay_png(explanation: Explanation, size: int) -> bytes:
    """The image enlarged to size x size with the heatmap over it (matplotlib's jet colours), PNG."""
    from matplotlib import colormaps
    from PIL import Image

    image = Image.fromarray(explanation.pixels).resize((size, size), Image.Resampling.BICUBIC)
    heat = Image.fromarray((explanation.heatmap * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    colours = (colormaps["jet"](np.asarray(heat) / 255.0)[..., :3] * 255).astype(np.uint8)
    blended = (np.asarray(image, np.float32) * (1 - HEAT_OPACITY) + colours * HEAT_OPACITY).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(blended).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def thumbnail_png(pixels: np.ndarray, size: int) -> bytes:
    """The image alone at size x size, PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).resize((size, size), Image.Resampling.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def explain_files(run_dir: Path, images: list[Path], out: Path, size: int) -> list[tuple[Path, str, float, Path]]:
    """`edgeclf explain`: Grad-CAM of the top-1 class for each image file (decoded with the run's own
    preprocessing), written as OUT/<stem>_gradcam.png. Returns (image, label, probability, written)."""
    from edgeclf.core.atomic import atomic_write_bytes
    from edgeclf.core.errors import EdgeclfError
    from edgeclf.core.images import ImageError, load_image
    from edgeclf.core.run_directory import Run
    from edgeclf.training.models import load_model

    run = Run.open(run_dir)
    decoded = []
    for path in images:  # every image checked before the model loads: one line for a bad one
        try:
            decoded.append(load_image(path, run.image_size))
        except ImageError as exc:
            raise EdgeclfError(f"{path}: {exc}") from None
    cam = GradCam(load_model(run.model_path))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, pixels in zip(images, decoded, strict=True):
        explanation = cam(pixels[None])[0]
        target = atomic_write_bytes(out / f"{Path(path).stem}_gradcam.png", overlay_png(explanation, size))
        written.append((Path(path), run.classes[explanation.label], explanation.probability, target))
    return written
