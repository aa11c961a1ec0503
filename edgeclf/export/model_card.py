"""export/MODEL_CARD.md: what a run's model is for, the data it saw, how each file did, and its
known limits, written from the run's own records (metadata.json, dataset.json, artifacts.json, and
reports/eval.json and reports/bench.json once evaluate and bench have run). `edgeclf export` writes it,
`edgeclf report` writes it again with the test accuracy and latency, and the bundle carries it."""

from __future__ import annotations

from pathlib import Path

from edgeclf import __version__
from edgeclf.core.atomic import atomic_write_text
from edgeclf.core.bounded import read_json
from edgeclf.core.run_directory import ARTIFACTS, DATASET, REPORTS, Run
from edgeclf.runtime.artifact import read_artifacts
from edgeclf.runtime.timing import headline_batch

MODEL_CARD = "MODEL_CARD.md"
LOW_RECALL_POINTS = 10  # a class whose recall is this many points under the model's mean is a known limit


def write_model_card(run: Run) -> Path:
    """Write RUN/export/MODEL_CARD.md (atomically) and return its path."""
    reports = run.path / REPORTS
    evaluation = read_json(reports / "eval.json") if (reports / "eval.json").is_file() else None
    bench = read_json(reports / "bench.json") if (reports / "bench.json").is_file() else None
    lines = [
        *_purpose(run),
        *_data(read_json(run.path / DATASET)),
        *_artifacts(run, evaluation),
        *_latency(bench, run),
        *_limits(run, evaluation),
    ]
    return atomic_write_text(run.export_dir / MODEL_CARD, "\n".join(lines) + "\n")


def _purpose(run: Run) -> list[str]:
    meta = run.metadata
    model, pre, weights = meta["model"], meta["preprocessing"], meta.get("weights", {})
    height, width = pre["size"]
    return [
        f"# Model card: {run.path.name}",
        "",
        f"Made by edgeclf {__version__} from the run `{run.path.name}` ({meta.get('created', 'date unknown')}).",
        "",
        "## What it is for",
        "",
        f"An image classifier of {len(run.classes)} classes, in label order: {', '.join(run.classes)}.",
        f"{model['name']} (alpha {model.get('alpha')}), weights from {weights.get('source', 'unknown')}"
        f"{' (' + str(weights['path']) + ')' if weights.get('path') else ''}.",
        f"Input: an RGB image resized to {height} x {width} ({pre['resize']['method']}, aspect ratio "
        f"{'kept' if pre['resize'].get('keep_aspect') else 'not kept'}), uint8 pixels 0..255; the files apply the "
        "normalisation themselves. Output: one probability per class. Every runner reads this from the file's "
        "metadata or artifacts.json; nothing is to be configured by hand.",
        "",
    ]


def _data(dataset: dict) -> list[str]:
    counts = dataset.get("counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts]
    classes = list(next(iter(counts.values()), {}))
    lines = ["## The data it saw", "", "| class | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for name in classes:
        lines.append(f"| {name} | " + " | ".join(str(counts[s].get(name, 0)) for s in splits) + " |")
    totals = " | ".join(str(sum(counts[s].values())) for s in splits)
    lines += [f"| all | {totals} |", ""]
    fractions = dataset.get("split_fractions") or {}
    split = " / ".join(f"{s} {fractions[s]:.0%}" for s in splits if isinstance(fractions.get(s), int | float))
    lines.append(
        f"Split {split or 'as packed'} (seed {dataset.get('seed')}); {_count(dataset.get('skipped'))} file(s) skipped "
        f"as unreadable, {_count(dataset.get('duplicates'))} duplicate(s) found (dataset.json lists them)."
    )
    imbalance = dataset.get("imbalance") or {}
    if imbalance.get("imbalanced"):
        lines.append(f"Classes are imbalanced: {imbalance.get('ratio')}x between the largest and smallest.")
    return [*lines, ""]


def _artifacts(run: Run, evaluation: dict | None) -> list[str]:
    scores = (evaluation or {}).get("artifacts", {})
    split = (evaluation or {}).get("split", "test")
    lines = [
        "## The files and how each did",
        "",
        "Validation: on the validation split at export, against the float model (int8 files through a gate with "
        "its interval: edgeclf/export/gate.py)."
        + (f" {split.capitalize()}: `edgeclf evaluate` on {evaluation['images']} images." if evaluation else ""),
        "",
        f"| artifact | size KiB | validation accuracy | agreement with float | verdict | {split} accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for a in read_artifacts(run.export_dir / ARTIFACTS):
        v = a.validation
        verdict = (
            a.status
            if a.status != "ok"
            else {"pass": "pass", "inconclusive": "kept (inconclusive)"}.get(v.get("decision"), "ok")
        )
        if v.get("repaired_by"):
            verdict = f"failed, repaired by {v['repaired_by']}"
        if a.repair_record.get("float_layers"):
            share = a.repair_record["float_macs_share"]
            verdict += f" ({len(a.float_layers)} layer(s) kept in float, {share:.1%} of MACs)"
        measured = scores.get(a.name, {}).get("accuracy")
        lines.append(
            f"| {a.name} | {a.bytes / 1024:.0f} | {_percent(v.get('accuracy'))} | "
            f"{_percent(v.get('agreement_with_float'))} | {verdict} | {_percent(measured)} |"
        )
    return [*lines, ""]


def _latency(bench: dict | None, run: Run) -> list[str]:
    lines = ["## Latency", ""]
    if not bench:
        return [
            *lines,
            f"Not measured yet: `edgeclf bench {run.path}` (and on the device: `edgeclf bench EXPORT`).",
            "",
        ]
    device = bench.get("device", {})
    lines += [
        f"On {device.get('cpu', 'an unknown CPU')} ({device.get('cores')} cores, {device.get('threads')} threads), "
        "p50 of the invoke at batch 1 (reports/bench.json; other devices: `edgeclf report --bench`):",
        "",
        "| artifact | p50 ms | × its fp32 |",
        "|---|---|---|",
    ]
    for name, r in bench.get("artifacts", {}).items():
        speed = r.get("speedup_vs_runtime_fp32")
        lines.append(f"| {name} | {headline_batch(r)['p50_ms']:.3f} | {f'{speed:.2f}' if speed else '-'} |")
    return [*lines, ""]


def _limits(run: Run, evaluation: dict | None) -> list[str]:
    lines = ["## Known limits", ""]
    index = read_artifacts(run.export_dir / ARTIFACTS)
    images = next((a.validation.get("images") for a in index if a.validation.get("images")), None)
    if images:
        lines.append(
            f"- The validation split has {images} images: one image is {100 / images:.2f} points, the finest "
            "difference its accuracies can show."
        )
    scores = (evaluation or {}).get("artifacts", {})
    keras = scores.get("keras-fp32")
    if keras:
        recalls = {name: c["recall"] for name, c in keras["per_class"].items()}
        mean = sum(recalls.values()) / len(recalls)
        low = [
            f"{n} ({r:.0%})"
            for n, r in sorted(recalls.items(), key=lambda i: i[1])
            if r < mean - LOW_RECALL_POINTS / 100
        ]
        if low:
            lines.append(
                f"- Classes the float model finds least often (recall on {evaluation['split']}): {', '.join(low)}."
            )
    for name, s in scores.items():
        if name != "keras-fp32" and s.get("agreement_with_float") is not None and s["agreement_with_float"] < 1:
            flips, split = round((1 - s["agreement_with_float"]) * s["images"]), evaluation["split"]
            lines.append(f"- {name} answers {flips} of {s['images']} {split} images differently from the float model.")
    if not evaluation:
        lines.append(f"- Not evaluated on held-out images yet: `edgeclf evaluate {run.path}`.")
    return lines


def _count(value) -> int:
    """dataset.json lists skipped files and duplicates (older ones counted them)."""
    return len(value) if isinstance(value, list) else int(value or 0)


def _percent(value) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "-"
