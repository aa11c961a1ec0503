"""`edgeclf report`: report.md and a self-contained report.html from eval.json and one or more
bench.json files (several devices merge into one table with a device column)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from edgeclf.core.atomic import atomic_write_bytes, atomic_write_text
from edgeclf.core.bounded import BoundedReadError, expect_object, read_json
from edgeclf.core.errors import EdgeclfError
from edgeclf.core.run_directory import REPORTS, Run
from edgeclf.export.model_card import write_model_card
from edgeclf.measure.keras_baseline import KERAS_NAME
from edgeclf.measure.plots import accuracy_latency_png, latency_distribution_png
from edgeclf.measure.tables import html_table, md_table
from edgeclf.runtime.timing import headline_batch

COLUMNS = (
    "device",
    "artifact",
    "precision",
    "size KiB",
    "accuracy",
    "Δ pts",
    "agreement",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "img/s b1",
    "max img/s",
    "× keras",
    "× fp32",
    "repair ms ×",  # a repaired int8 file's latency over the full-int8 file it replaced
)


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    devices: list[str]


def device_label(bench: dict) -> str:
    d = bench["device"]
    return f"{d.get('board') or d['cpu']} ({d['machine']}, {d['threads']} thr)"


def _load_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise EdgeclfError(f"{path}: not found; {what}")
    try:  # bench files come from other devices: bounded like every file from outside
        return expect_object(read_json(path, 64 * 2**20), str(path))
    except BoundedReadError as exc:
        raise EdgeclfError(f"{exc}; {what}") from None


def same_machine(evaluation: dict, bench: dict, own: bool) -> bool:
    """Whether bench ran where evaluation's accuracies were measured (CPU, architecture, board).
    An eval.json without a machine record (schema before provenance) counts only for the run's
    own bench.json."""
    where = evaluation.get("machine")
    if not where:
        return own
    d = bench["device"]
    return not d.get("emulated") and all(where.get(k) == d.get(k) for k in ("cpu", "machine", "board"))


@dataclass
class Recommendation:
    """The artifact to deploy on one device: the fastest at batch 1 (p50 invoke_ms) among those that
    passed validation at export (a failed file that bench timed beside its repair never is); None with the
    reason when there is none."""

    device: str
    artifact: str | None
    sentence: str


def recommend(bench: dict, evaluation: dict | None, accuracy_here: bool) -> Recommendation:
    device = device_label(bench)
    # a failed file timed beside its repair (bench.json "status") is never deployable
    deployable = {n: r for n, r in bench["artifacts"].items() if n != KERAS_NAME and "status" not in r}
    if not deployable:
        return Recommendation(
            device,
            None,
            f"{device}: no artifact to recommend: none passed validation at export "
            "(see artifacts.json), or none was benchmarked",
        )
    name, r = min(deployable.items(), key=lambda item: headline_batch(item[1])["p50_ms"])
    b1 = headline_batch(r)
    parts = [f"{r['file_bytes'] / 1024:.0f} KiB", f"p50 {b1['p50_ms']:.3f} ms at batch {b1['batch']}"]
    if r.get("speedup_vs_runtime_fp32") and r["precision"] != "fp32":
        fp32 = r.get("runtime_fp32") or f"{r['format']}-fp32"
        parts.append(f"{r['speedup_vs_runtime_fp32']:.2f}x the speed of {fp32}")
    if r.get("speedup_vs_keras"):
        parts.append(f"{r['speedup_vs_keras']:.1f}x the compiled Keras model")
    scores = (evaluation or {}).get("artifacts", {})
    if accuracy_here and name in scores:
        e = scores[name]
        parts.append(
            f"{evaluation['split']} accuracy {e['accuracy']:.2%} ({e['delta_points']:+.2f} points vs float, "
            f"{e['agreement_with_float']:.1%} top-1 agreement)"
        )
    else:
        parts.append("accuracy as validated at export (not measured on this device; edgeclf verify checks its outputs)")
    return Recommendation(device, name, f"{device}: **{name}**: " + "; ".join(parts))


def rows(bench: dict, evaluation: dict | None, accuracy_here: bool = True) -> list[dict]:
    """One row per artifact; accuracy columns only where the accuracy was measured on this bench's
    machine ("-" elsewhere: a device row never shows another machine's accuracy as its own)."""
    records = (evaluation or {}).get("artifacts", {}) if accuracy_here else {}
    out = []
    for name, r in bench["artifacts"].items():
        b1 = headline_batch(r)
        e = records.get(name, {})
        out.append(
            {
                "device": device_label(bench),
                "artifact": name,
                "precision": r["precision"] + (" (failed, repaired)" if "status" in r else ""),
                "size KiB": f"{r['file_bytes'] / 1024:.0f}",
                "accuracy": f"{e['accuracy']:.2%}" if e else "-",
                "Δ pts": f"{e['delta_points']:+.2f}" if e else "-",
                "agreement": f"{e['agreement_with_float']:.2%}" if e else "-",
                "p50 ms": f"{b1['p50_ms']:.3f}",
                "p90 ms": f"{b1['p90_ms']:.3f}",
                "p99 ms": f"{b1['p99_ms']:.3f}",
                "img/s b1": f"{b1['throughput_ips']:.0f}",
                "max img/s": f"{max(b['throughput_ips'] for b in r['batches']):.0f}",
                "× keras": f"{r['speedup_vs_keras']:.2f}" if r.get("speedup_vs_keras") else "-",
                "× fp32": f"{r['speedup_vs_runtime_fp32']:.2f}" if r.get("speedup_vs_runtime_fp32") else "-",
                "repair ms ×": f"{r['vs_full_int8']:.2f}" if r.get("vs_full_int8") else "-",
            }
        )
    return out


def build_report(run_dir: Path, more_bench: list[Path] = (), out: Path | None = None) -> ReportResult:
    """report.md and a self-contained report.html (figures embedded) in `out` (default
    RUN_DIR/reports) from the run's eval.json, its own bench.json and the bench.json files of other
    devices; one table per device, merged into one when there are several. Raises EdgeclfError
    when eval.json or every bench.json is missing."""
    run = Run.open(run_dir)
    reports = run.path / REPORTS
    evaluation = _load_json(reports / "eval.json", f"run edgeclf evaluate {run.path} first")
    own = [reports / "bench.json"] if (reports / "bench.json").is_file() else []
    benches = [_load_json(p, "give a bench.json written by edgeclf bench") for p in [*own, *map(Path, more_bench)]]
    if not benches:
        raise EdgeclfError(f"{reports / 'bench.json'}: not found; run edgeclf bench {run.path} first")
    out = Path(out or reports)
    context = _context(run, evaluation, benches, own_bench=bool(own))
    images = _figures(run, evaluation, benches[0], context["recommendations"][0].artifact)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for stale in (out / "figures").glob("*.png"):  # e.g. the confusion matrix of an earlier recommendation
        if stale.name not in images:
            stale.unlink()
    for name, data in images.items():
        atomic_write_bytes(out / "figures" / name, data)
    md = atomic_write_text(out / "report.md", _markdown(context, images))
    page = atomic_write_text(out / "report.html", _html(context, images))
    write_model_card(run)  # again, now with the test accuracy and the latency
    return ReportResult(md, page, [label for label, _ in context["tables"]])


def _figures(run: Run, evaluation: dict, first: dict, recommended: str | None) -> dict[str, bytes]:
    """PNG name -> content: accuracy vs latency and the latency distribution on the first device,
    the confusion matrices of the float model and of the artifact recommended there, the training
    curves."""
    points = [
        (name, headline_batch(r)["p50_ms"], evaluation["artifacts"][name]["accuracy"])
        for name, r in first["artifacts"].items()
        if name in evaluation["artifacts"]
    ]
    samples = {n: r["samples_ms_batch1"] for n, r in first["artifacts"].items() if r.get("samples_ms_batch1")}
    images = {
        "accuracy_vs_latency.png": accuracy_latency_png(
            points, f"accuracy vs latency on {device_label(first)}", highlight=recommended
        ),
        "latency_distribution.png": latency_distribution_png(
            samples, f"latency distribution, batch 1, {device_label(first)}"
        ),
    }
    confusion = run.path / REPORTS / "confusion"
    for name in [KERAS_NAME, recommended]:
        if name and (confusion / f"{name}.png").is_file():
            images[f"confusion_{name}.png"] = (confusion / f"{name}.png").read_bytes()
    if (run.path / "curves.png").is_file():
        images["training_curves.png"] = (run.path / "curves.png").read_bytes()
    return images


def _context(run: Run, evaluation: dict, benches: list[dict], own_bench: bool) -> dict:
    """What the markdown and HTML writers show: tables per device (accuracy only where it was
    measured), the merged table, and the notes."""
    here = [same_machine(evaluation, b, own=own_bench and i == 0) for i, b in enumerate(benches)]
    tables = [(device_label(b), rows(b, evaluation, h)) for b, h in zip(benches, here, strict=True)]
    notes = [
        f"{device_label(b)}: accuracy not measured on this device (shown as -); "
        "edgeclf verify checks that its outputs match the exporting machine's"
        for b, h in zip(benches, here, strict=True)
        if not h
    ]
    notes += [f"{device_label(b)}: {b['device']['emulated']}" for b in benches if b["device"].get("emulated")]
    notes += [f"{device_label(b)}: {n}" for b in benches for n in b.get("notes", [])]
    return {
        "run": run,
        "evaluation": evaluation,
        "benches": benches,
        "tables": tables,
        "merged": [row for _, device_rows in tables for row in device_rows] if len(benches) > 1 else None,
        "recommendations": [recommend(b, evaluation, h) for b, h in zip(benches, here, strict=True)],
        "accuracy_on": _accuracy_source(evaluation),
        "notes": notes,
    }


def _intro(ctx) -> list[str]:
    meta, ev = ctx["run"].metadata, ctx["evaluation"]
    return [
        f"Run `{ctx['run'].path}`: {meta['model']['name']} alpha {meta['model'].get('alpha')}, "
        f"{meta['preprocessing']['size'][0]} px, {len(meta['classes'])} classes, weights {meta['weights']['source']}.",
        f"Accuracy on the {ev['split']} split ({ev['images']} images), from the run's eval.json, measured on "
        f"{ctx['accuracy_on']}; latency is batch 1, invoke_ms only (decoding, preprocessing and postprocessing "
        "apart; the spans are defined in bench.json), percentiles of warm runs on each device.",
    ]


def _accuracy_source(evaluation: dict) -> str:
    where = evaluation.get("machine")
    if not where:
        return "the machine where edgeclf evaluate ran (not recorded)"
    engines = sorted(
        {r.get("engine_version") or r["engine"] for r in evaluation["artifacts"].values() if r.get("engine")}
    )
    return f"{where['cpu']} ({where['machine']}) with {', '.join(engines)}"


def _markdown(ctx, images) -> str:
    parts = ["# edgeclf report", "", "## Verdict", "", *[f"- {r.sentence}" for r in ctx["recommendations"]], ""]
    parts += [*_intro(ctx), ""]
    for label, table_rows in ctx["tables"]:
        parts += [f"## {label}", "", md_table(table_rows, COLUMNS[1:]), ""]
    if ctx["merged"]:
        parts += ["## All devices", "", md_table(ctx["merged"], COLUMNS), ""]
    if ctx["notes"]:
        parts += ["## Notes", "", *[f"- {n}" for n in ctx["notes"]], ""]
    parts += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in images] + [""]
    return "\n".join(parts)


def _html(ctx, images) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeclf report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}",
        "table{border-collapse:collapse;margin:1em 0}",
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}",
        "img{max-width:100%;margin:1em 0;display:block}</style></head><body><h1>edgeclf report</h1>",
    ]
    verdicts = "".join(
        f"<li>{html.escape(r.sentence).replace('**', '<b>', 1).replace('**', '</b>', 1)}</li>"
        for r in ctx["recommendations"]
    )
    parts += [f"<h2>Verdict</h2><ul>{verdicts}</ul>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in _intro(ctx)]
    for label, table_rows in ctx["tables"]:
        parts += [f"<h2>{html.escape(label)}</h2>", html_table(table_rows, COLUMNS[1:])]
    if ctx["merged"]:
        parts += ["<h2>All devices</h2>", html_table(ctx["merged"], COLUMNS)]
    if ctx["notes"]:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in ctx["notes"]] + ["</ul>"]
    parts.append("<h2>Figures</h2>")
    for name, data in images.items():
        parts.append(
            f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' "
            f"src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
