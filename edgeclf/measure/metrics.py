"""Classification metrics from labels and probabilities (NumPy only)."""

from __future__ import annotations

import numpy as np

TOP_K = 5


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def classification_metrics(labels: np.ndarray, probs: np.ndarray, classes: list[str], k: int = TOP_K) -> dict:
    """Accuracy, top-k accuracy (when there are more than k classes), per-class precision, recall,
    F1 and support, their macro and support-weighted averages, and the confusion matrix.
    A class never predicted has precision 0 (as scikit-learn's zero_division=0)."""
    labels = np.asarray(labels)
    predicted = probs.argmax(1)
    matrix = confusion_matrix(labels, predicted, len(classes))
    tp = np.diag(matrix).astype(np.float64)
    predicted_count, support = matrix.sum(0), matrix.sum(1)
    precision = np.divide(tp, predicted_count, out=np.zeros_like(tp), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    weights = support / support.sum()
    result = {
        "images": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=False)
        },
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "weighted": {
            "precision": float((precision * weights).sum()),
            "recall": float((recall * weights).sum()),
            "f1": float((f1 * weights).sum()),
        },
        "confusion_matrix": matrix.tolist(),
    }
    if len(classes) > k:
        top = np.argsort(-probs, axis=1)[:, :k]
        result[f"top{k}_accuracy"] = float((top == labels[:, None]).any(1).mean())
    return result
