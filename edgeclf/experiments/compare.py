"""`edgeclf compare`: one report across runs and sweep trials, and the choice under a budget.

Each run (a run directory with an int8 TFLite artifact, benched) or sweep trial (SWEEP_DIR/trials/NNN,
from edgeclf.experiments.trial) is a row: settings, float and int8 validation accuracy, agreement, size, p50 and
p99 latency at batch 1 on the machine that measured it, training time. The accuracy-latency and
accuracy-size Pareto fronts are drawn with the chosen row marked. The chosen row is the most
accurate int8 file within --budget-ms / --budget-kb (ties: faster, then smaller); its test-split
accuracy is computed once, after the choice (the test split never takes part in choosing), and kept
in OUT/chosen_test.json for the same file.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeclf.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from edgeclf.core.errors import EdgeclfError
from edgeclf.measure.tables import html_table, md_table

LATENCY_TITLE = "int8 accuracy vs latency (Pareto front joined)"
SIZE_TITLE = "int8 accuracy vs file size (Pareto front joined)"
SETTINGS = ("model.name", "model.alpha", "data.image_size", "train.learning_rate", "train.epochs")
COLUMNS = (
    "name",
    "model",
    "alpha",
    "size px",
    "float acc",
    "int8 acc",
    "agreement",
    "KiB",
    "p50 ms",
    "p99 ms",
    "train s",
)


@dataclass
class Row:
    name: str
    run: str  # the run directory holding the int8 file
    artifact: str
    settings: dict
    val_accuracy_float: float
    val_accuracy_int8: float
    agreement: float
    size_bytes: int
    p50_ms: float
    p99_ms: float
    train_seconds: float

    def cells(self) -> dict:
        s = self.settings
        return {
            "name": self.name,
            "model": s.get("model.name"),
            "alpha": s.get("model.alpha"),
            "size px": s.get("data.image_size"),
            "float acc": f"{self.val_accuracy_float:.2%}",
            "int8 acc": f"{self.val_accuracy_int8:.2%}",
            "agreement": f"{self.agreement:.2%}",
            "KiB": f"{self.size_bytes / 1024:.0f}",
            "p50 ms": f"{self.p50_ms:.3f}",
            "p99 ms": f"{self.p99_ms:.3f}",
            "train s": f"{self.train_seconds:.0f}",
        }


@dataclass
class Comparison:
    rows: list[Row]
    chosen: Row | None
    budget_ms: float | None
    budget_kb: float | None
    fronts: dict[str, list[str]]
    test: dict | None = None
    notes: list[str] = field(default_factory=list)


def _settings(config_yaml: Path) -> dict:
    import yaml

    cfg = yaml.safe_load(config_yaml.read_text(encoding="utf-8"))
    out = {}
    for key in SETTINGS:
        value = cfg
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
    return out


def _trial_rows(sweep: Path) -> list[Row]:
    rows = []
    for folder in sorted((sweep / "trials").iterdir()):
        result_file = folder / "result.json"
        if not result_file.is_file():  # failed or unfinished: not a candidate
            continue
        r = json.loads(result_file.read_text())
        if r.get("pruned"):  # stopped early by the sweep's pruner: no int8 file to compare
            continue
        rows.append(
            Row(
                f"trial {folder.name}",
                str(folder / "run"),
                r["int8_artifact"],
                _settings(folder / "config.yaml"),
                r["val_accuracy_float"],
                r["val_accuracy_int8"],
                r["agreement"],
                r["size_bytes"],
                r["p50_ms"],
                r["p99_ms"],
                r["train_seconds"],
            )
        )
    return rows


def _run_row(run: Path) -> Row:
    from edgeclf.runtime.artifact import read_artifacts
    from edgeclf.runtime.timing import headline_batch

    ok = [a for a in read_artifacts(run / "export") if a.status == "ok" and a.format == "tflite"]
    int8 = next((a for a in ok if a.precision.is_integer), None)
    bench_file = run / "reports" / "bench.json"
    if int8 is None or not bench_file.is_file():
        raise EdgeclfError(
            f"{run}: needs an int8 TFLite artifact and reports/bench.json (edgeclf export --int8, bench)"
        )
    timed = json.loads(bench_file.read_text())["artifacts"].get(int8.name)
    if timed is None:
        raise EdgeclfError(f"{bench_file}: {int8.name} was not benched; run edgeclf bench {run}")
    batch1 = headline_batch(timed)  # batch 1, or the first measured (bench --batch-sizes 8 has no batch 1)
    meta = json.loads((run / "metadata.json").read_text())
    v = int8.validation
    return Row(
        run.name,
        str(run),
        int8.name,
        _settings(run / "config.yaml"),
        v["float_accuracy"],
        v["accuracy"],
        v["agreement_with_float"],
        int8.bytes,
        batch1["p50_ms"],
        batch1["p99_ms"],
        meta["training"]["seconds"],
    )


def collect(paths: list[Path]) -> list[Row]:
    """Rows for every run and every completed trial of every sweep given."""
    rows = []
    for path in map(Path, paths):
        if (path / "trials").is_dir():
            rows += _trial_rows(path)
        elif (path / "metadata.json").is_file():
            rows.append(_run_row(path))
        else:
            raise EdgeclfError(f"{path}: neither a run directory nor a sweep folder (SWEEP_DIR/trials)")
    if not rows:
        raise EdgeclfError(f"{', '.join(map(str, paths))}: no completed runs or trials to compare")
    return rows


def pareto_front(rows: list[Row], cost: str) -> list[Row]:
    """Rows no other row beats on both int8 accuracy (higher) and `cost` (lower): a row is dominated
    by one at least as good on both and better on one."""

    def dominated(r: Row) -> bool:
        return any(
            o.val_accuracy_int8 >= r.val_accuracy_int8
            and getattr(o, cost) <= getattr(r, cost)
            and (o.val_accuracy_int8 > r.val_accuracy_int8 or getattr(o, cost) < getattr(r, cost))
            for o in rows
        )

    return sorted((r for r in rows if not dominated(r)), key=lambda r: getattr(r, cost))


def choose(rows: list[Row], budget_ms: float | None = None, budget_kb: float | None = None) -> Row | None:
    """The most accurate int8 file within the budgets (ties: lower p50, then smaller); None when no
    row fits."""
    fits = [
        r
        for r in rows
        if (budget_ms is None or r.p50_ms <= budget_ms) and (budget_kb is None or r.size_bytes <= budget_kb * 1024)
    ]
    return min(fits, key=lambda r: (-r.val_accuracy_int8, r.p50_ms, r.size_bytes), default=None)


def _test_result(row: Row, out: Path) -> dict:
    """The chosen file's accuracy on the test split, computed once per file (OUT/chosen_test.json)."""
    from edgeclf.measure.evaluate import evaluate_run
    from edgeclf.runtime.artifact import read_artifacts

    sha = next(a.sha256 for a in read_artifacts(Path(row.run) / "export") if a.name == row.artifact)
    cache = out / "chosen_test.json"
    if cache.is_file() and (kept := json.loads(cache.read_text())).get("sha256") == sha:
        return kept
    result = evaluate_run(Path(row.run), "test", names=[row.artifact])
    score = next(s for s in result.scores if s.name == row.artifact)
    test = {
        "run": row.run,
        "artifact": row.artifact,
        "sha256": sha,
        "split": "test",
        "images": result.images,
        "accuracy": score.metrics["accuracy"],
    }
    atomic_write_json(cache, test)
    return test


def compare(
    paths: list[Path], out: Path, budget_ms: float | None = None, budget_kb: float | None = None, test: bool = True
) -> Comparison:
    """Collect, choose, evaluate the choice on the test split once, and write OUT/compare.md,
    compare.html, compare.json and the two Pareto figures."""
    from edgeclf.measure.plots import pareto_png

    rows = collect(paths)
    chosen = choose(rows, budget_ms, budget_kb)
    fronts = {cost: [r.name for r in pareto_front(rows, cost)] for cost in ("p50_ms", "size_bytes")}
    result = Comparison(rows, chosen, budget_ms, budget_kb, fronts)
    if chosen is None:
        result.notes.append("no run or trial fits the budget; the fronts show what each budget would need")
    result.notes.append(
        "latency: p50 at batch 1 of the int8 file on the machine that benched it; accuracy: "
        "validation split (the test split is used once, for the chosen file only)"
    )
    out.mkdir(parents=True, exist_ok=True)
    if chosen is not None and test:
        result.test = _test_result(chosen, out)
    name = chosen.name if chosen else None
    latency = [(r.name, r.p50_ms, r.val_accuracy_int8) for r in rows]
    size = [(r.name, r.size_bytes / 1024, r.val_accuracy_int8) for r in rows]
    figures = {
        "pareto_latency.png": pareto_png(latency, fronts["p50_ms"], name, "int8 p50, batch 1 (ms)", LATENCY_TITLE),
        "pareto_size.png": pareto_png(size, fronts["size_bytes"], name, "int8 file size (KiB)", SIZE_TITLE),
    }
    for name, png in figures.items():
        atomic_write_bytes(out / name, png)
    atomic_write_json(out / "compare.json", _document(result))
    atomic_write_text(out / "compare.md", _markdown(result, figures))
    atomic_write_text(out / "compare.html", _html(result, figures))
    return result


def _document(c: Comparison) -> dict:
    return {
        "budget_ms": c.budget_ms,
        "budget_kb": c.budget_kb,
        "chosen": c.chosen and c.chosen.name,
        "test": c.test,
        "fronts": c.fronts,
        "rows": [asdict(r) for r in c.rows],
        "notes": c.notes,
    }


def verdict(c: Comparison) -> str:
    budget = (
        " and ".join(
            b
            for b in (c.budget_ms and f"p50 <= {c.budget_ms:g} ms", c.budget_kb and f"size <= {c.budget_kb:g} KiB")
            if b
        )
        or "no budget"
    )
    if c.chosen is None:
        return f"Nothing fits {budget}."
    r = c.chosen
    test = f"; test accuracy {c.test['accuracy']:.2%} on {c.test['images']} images" if c.test else ""
    return (
        f"Best under {budget}: {r.name} ({r.artifact}, {r.settings.get('model.name')} alpha "
        f"{r.settings.get('model.alpha')}, {r.settings.get('data.image_size')} px): int8 validation accuracy "
        f"{r.val_accuracy_int8:.2%}, p50 {r.p50_ms:.3f} ms, {r.size_bytes / 1024:.0f} KiB{test}."
    )


def _markdown(c: Comparison, figures: dict) -> str:
    rows = [r.cells() for r in sorted(c.rows, key=lambda r: -r.val_accuracy_int8)]
    parts = ["# edgeclf compare", "", verdict(c), "", md_table(rows, COLUMNS), ""]
    parts += [
        f"Pareto front (latency): {', '.join(c.fronts['p50_ms'])}",
        f"Pareto front (size): {', '.join(c.fronts['size_bytes'])}",
        "",
    ]
    parts += [*[f"- {n}" for n in c.notes], ""] + [f"![{name}]({name})" for name in figures] + [""]
    return "\n".join(parts)


def _html(c: Comparison, figures: dict) -> str:
    rows = [r.cells() for r in sorted(c.rows, key=lambda r: -r.val_accuracy_int8)]
    images = "".join(
        f"<img alt='{name}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        for name, png in figures.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in c.notes)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeclf compare</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body><h1>edgeclf compare</h1>"
        f"<p>{html.escape(verdict(c))}</p>{html_table(rows, COLUMNS)}<ul>{notes}</ul>{images}"
        "</body></html>"
    )
