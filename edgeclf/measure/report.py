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
from edgeclf.core.precision import Precision
from edgeclf.core.run_directory import ARTIFACTS, REPORTS, Run
from edgeclf.export.model_card import write_model_card
from edgeclf.measure.keras_baseline import KERAS_NAME
from edgeclf.measure.plots import accuracy_latency_png, latency_distribution_png
from edgeclf.measure.tables import html_table, md_table
from edgeclf.runtime.artifact import read_artifacts
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
    galleries = _galleries(run, evaluation, context)
    images.update(_gallery_files(galleries))
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for stale in (out / "figures").glob("*.png"):  # e.g. the confusion matrix of an earlier recommendation
        if stale.name not in images:
            stale.unlink()
    for name, data in images.items():
        atomic_write_bytes(out / "figures" / name, data)
    context["galleries"], context["next_steps"] = galleries, _next_steps(context)  # both writers show them
    md = atomic_write_text(out / "report.md", _markdown(context, images))
    page = atomic_write_text(out / "report.html", _html(context, images))
    write_model_card(run)  # again, now with the test accuracy and the latency
    return ReportResult(md, page, [label for label, _ in context["tables"]])


def _galleries(run: Run, evaluation: dict, ctx: dict):
    """The galleries (edgeclf.measure.gallery) of the evaluated split, the int8 file compared being the
    recommended one when it is int8, else the first int8 artifact evaluated; None when report.gallery_images is 0."""
    from edgeclf.measure.gallery import build_galleries

    cfg = run.config().report
    if not cfg.gallery_images:
        return None
    recommended = ctx["recommendations"][0].artifact
    int8 = [
        name
        for name, r in evaluation["artifacts"].items()
        if name != KERAS_NAME and Precision(r["precision"]).is_integer
    ]
    chosen = recommended if recommended in int8 else next(iter(int8), None)
    return build_galleries(run, evaluation["split"], chosen, cfg)


GALLERIES = (  # (attribute, title, what it shows)
    ("misclassified", "What the float model gets wrong", "test images whose float top-1 is not the label"),
    ("flips", "Where int8 answers otherwise", "images where the int8 file's top-1 differs from the float model's"),
    ("correct", "Right answers, per class", "images the float model gets right (a few per class)"),
)


def _gallery_files(galleries) -> dict[str, bytes]:
    """figures/gallery_<kind>_<index>.png for report.md (report.html embeds the same images)."""
    if galleries is None:
        return {}
    return {f"gallery_{kind}_{t.index}.png": t.png for kind, _, _ in GALLERIES for t in getattr(galleries, kind)}


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


def _next_steps(ctx) -> list[str]:
    """What to do with the verdict: which file to copy, how to check it on the device, the bundle."""
    run = ctx["run"]
    chosen = ctx["recommendations"][0].artifact
    if not chosen:
        return [f"Nothing passed validation: see `{run.path}/export/artifacts.json` and docs/QUANTIZATION.md."]
    entry = next((a for a in read_artifacts(run.export_dir / ARTIFACTS) if a.name == chosen), None)
    path = f"{run.path}/{entry.path}" if entry else f"{run.path}/export/"
    return [
        f"Copy `{path}` with `{run.path}/export/artifacts.json` (labels and preprocessing are inside both), or the "
        f"whole validated export as one file: `edgeclf export {run.path} --int8 --bundle model.tar.gz`.",
        "On the device: `edgeclf unpack model.tar.gz DIR`, then `edgeclf verify DIR/export` checks that it "
        "reproduces these outputs, and `edgeclf predict DIR/export IMAGE` runs it.",
        f"What the model is and its limits: `{run.path}/export/MODEL_CARD.md`.",
    ]


def _gallery_caption(tile) -> str:
    text = f"true {tile.true}; float {tile.answer} ({tile.probability:.2f})"
    if tile.int8_answer is not None:
        text += f"; int8 {tile.int8_answer} ({tile.int8_probability:.2f})"
    return text


def _gallery_intro(galleries, kind: str, what: str) -> str:
    shown = len(getattr(galleries, kind))
    total = {"misclassified": galleries.misclassified_total, "flips": galleries.flips_total}.get(kind)
    if not shown:
        none = {"misclassified": "the float model", "flips": f"{galleries.int8} against the float model"}.get(kind)
        return f"None on the {galleries.split} split ({galleries.images} images): {none} has no such image."
    of = f"{shown} of {total}" if total is not None else str(shown)
    compared = f" ({galleries.int8} against the float model)" if kind == "flips" else ""
    return (
        f"{of} {what} on the {galleries.split} split ({galleries.images} images){compared}; the heat shows where the "
        "float model looks for its answer (Grad-CAM)."
    )


def _markdown(ctx, images) -> str:
    parts = ["# edgeclf report", "", "## Verdict", "", *[f"- {r.sentence}" for r in ctx["recommendations"]], ""]
    parts += ["## What to do next", "", *[f"- {line}" for line in ctx["next_steps"]], ""]
    parts += [*_intro(ctx), ""]
    for label, table_rows in ctx["tables"]:
        parts += [f"## {label}", "", md_table(table_rows, COLUMNS[1:]), ""]
    if ctx["merged"]:
        parts += ["## All devices", "", md_table(ctx["merged"], COLUMNS), ""]
    if ctx["notes"]:
        parts += ["## Notes", "", *[f"- {n}" for n in ctx["notes"]], ""]
    galleries = ctx.get("galleries")
    for kind, title, what in GALLERIES if galleries else ():
        tiles = getattr(galleries, kind)
        parts += [f"## {title}", "", _gallery_intro(galleries, kind, what), ""]
        parts += [f"![{_gallery_caption(t)}](figures/gallery_{kind}_{t.index}.png)" for t in tiles] + [""]
    figures = [name for name in images if not name.startswith("gallery_")]
    parts += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in figures] + [""]
    return "\n".join(parts)


STYLE = """
:root{--ink:#1d2733;--muted:#5b6875;--line:#dfe4ea;--accent:#1a6dd1;--good:#e7f4ea;--card:#f6f8fb}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;background:#fff}
main{max-width:1200px;margin:0 auto;padding:24px 28px 64px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px;color:var(--muted)}
p,li{max-width:78ch}.muted{color:var(--muted)}
.verdict{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--accent);border-radius:8px;
padding:14px 18px;margin:16px 0}.verdict ul{margin:0;padding-left:18px}
.next{background:var(--good);border-radius:8px;padding:12px 18px}.next code{background:#fff}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--card);padding:1px 4px;border-radius:4px;
overflow-wrap:anywhere}
.scroll{max-width:100%;overflow:auto;max-height:70vh;border:1px solid var(--line);border-radius:8px;margin:10px 0}
table{border-collapse:collapse;font-size:13px;width:max-content;min-width:100%}
th{position:sticky;top:0;background:#eef2f6;text-align:left;font-weight:600;z-index:1}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.t{text-align:left}
tr.recommended td{background:#fff6d6;font-weight:600}tr.recommended td:first-child{box-shadow:inset 4px 0 0 #e0a800}
tbody tr:hover td{background:#f3f6fa}
img{max-width:100%;height:auto}
figure{margin:0}
.figures img{display:block;margin:8px 0 22px;border:1px solid var(--line);border-radius:6px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(132px,1fr));gap:12px;margin:8px 0}
.gallery figure{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px}
.gallery img{display:block;width:100%;border-radius:4px;image-rendering:auto}
.gallery figcaption{font-size:12px;line-height:1.35;margin-top:6px;overflow-wrap:anywhere}
"""


def _html(ctx, images) -> str:
    def verdict(sentence: str) -> str:
        return html.escape(sentence).replace("**", "<b>", 1).replace("**", "</b>", 1)

    def code(text: str) -> str:  # `x` -> <code>x</code>, the rest escaped
        pieces = text.split("`")
        return "".join(f"<code>{html.escape(p)}</code>" if k % 2 else html.escape(p) for k, p in enumerate(pieces))

    marked = frozenset(r.artifact for r in ctx["recommendations"] if r.artifact)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>edgeclf report: {html.escape(ctx['run'].path.name)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>edgeclf report</h1><p class='muted'>{html.escape(str(ctx['run'].path))}</p>",
        "<h2>Verdict</h2><div class='verdict'><ul>"
        + "".join(f"<li>{verdict(r.sentence)}</li>" for r in ctx["recommendations"]),
        "</ul></div>",
        "<h2>What to do next</h2><div class='next'><ul>",
        *[f"<li>{code(line)}</li>" for line in ctx["next_steps"]],
        "</ul></div>",
    ]
    parts += [f"<p class='muted'>{code(line)}</p>" for line in _intro(ctx)]
    for label, table_rows in ctx["tables"]:
        parts += [f"<h2>{html.escape(label)}</h2>", html_table(table_rows, COLUMNS[1:], marked)]
    if ctx["merged"]:
        parts += ["<h2>All devices</h2>", html_table(ctx["merged"], COLUMNS, marked)]
    if ctx["notes"]:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in ctx["notes"]] + ["</ul>"]
    galleries = ctx.get("galleries")
    for kind, title, what in GALLERIES if galleries else ():
        tiles = getattr(galleries, kind)
        parts += [f"<h2>{html.escape(title)}</h2><p>{html.escape(_gallery_intro(galleries, kind, what))}</p>"]
        parts += (
            ["<div class='gallery'>"]
            + [
                f"<figure><img alt='{html.escape(_gallery_caption(t))}' src='{t.data_uri()}'>"
                f"<figcaption>{html.escape(_gallery_caption(t))}</figcaption></figure>"
                for t in tiles
            ]
            + ["</div>"]
        )
    parts.append("<h2>Figures</h2><div class='figures'>")
    for name, data in images.items():
        if name.startswith("gallery_"):
            continue
        parts.append(
            f"<h3>{html.escape(name.removesuffix('.png').replace('_', ' '))}</h3><img alt='{html.escape(name)}' "
            f"src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        )
    parts.append("</div></main></body></html>")
    return "\n".join(parts)
