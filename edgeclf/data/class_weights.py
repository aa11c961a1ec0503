"""Class weights for imbalanced folders, and the imbalance check that suggests them.

`train.class_weights`: `none`; `balanced` (each class weighted n_train / (classes x n_class), the
weighting scikit-learn and MediaPipe Model Maker call balanced: every class contributes equally to
the loss); or a mapping {class name: weight} (classes left out weigh 1). The weights applied are
recorded in metadata.json (training.class_weights). A training split whose largest class has more
than IMBALANCE_RATIO times the images of its smallest is reported in dataset.json (`imbalance`) and
logged with the way to weight it.
"""

from __future__ import annotations

from edgeclf.core.errors import ConfigError

IMBALANCE_RATIO = 3.0


def class_weights(setting, classes: list[str], train_counts: dict[str, int]) -> dict[int, float] | None:
    """{label: weight} for Keras' fit (None for `none`). Raises ConfigError for a class name the
    data does not have."""
    if setting == "none":
        return None
    if setting == "balanced":
        total = sum(train_counts.values())
        return {i: total / (len(classes) * train_counts[name]) for i, name in enumerate(classes) if train_counts[name]}
    unknown = sorted(set(setting) - set(classes))
    if unknown:
        raise ConfigError(
            f"train.class_weights: class {unknown[0]!r} is not in the data (classes: {', '.join(classes)})"
        )
    return {i: float(setting.get(name, 1.0)) for i, name in enumerate(classes)}


def imbalance(train_counts: dict[str, int]) -> dict | None:
    """{"largest", "smallest", "ratio", "imbalanced"} of the training split (None when empty)."""
    counted = {name: n for name, n in train_counts.items() if n > 0}
    if not counted:
        return None
    largest = max(counted, key=counted.get)
    smallest = min(counted, key=counted.get)
    ratio = counted[largest] / counted[smallest]
    return {
        "largest": {"class": largest, "images": counted[largest]},
        "smallest": {"class": smallest, "images": counted[smallest]},
        "ratio": round(ratio, 3),
        "imbalanced": ratio > IMBALANCE_RATIO,
    }
