"""Classify images with MediaPipe Tasks' ImageClassifier, reading labels and normalisation from the
.tflite's metadata. Runs in its own environment (mediapipe's pins clash with tfmot's):

    python3 -m venv .venv-mediapipe && .venv-mediapipe/bin/pip install mediapipe
    .venv-mediapipe/bin/python tools/mediapipe_classify.py MODEL.tflite IMAGE [IMAGE ...]

Prints one JSON object per image: {"image": path, "categories": [[name, score], ...]} (top 3).
"""

import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as mp_tasks
from mediapipe.tasks.python import vision
from PIL import Image


def main() -> None:
    model, images = sys.argv[1], sys.argv[2:]
    options = vision.ImageClassifierOptions(base_options=mp_tasks.BaseOptions(model_asset_path=model), max_results=3)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            rgb = np.asarray(Image.open(path).convert("RGB"))  # MediaPipe keeps grayscale files 1-channel
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
            categories = [[c.category_name, round(c.score, 6)] for c in result.classifications[0].categories]
            print(json.dumps({"image": path, "categories": categories}))


if __name__ == "__main__":
    main()
