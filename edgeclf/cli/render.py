"""How the command line shows what the stages return: tables, progress bars and summaries.
The stages compute and return typed results; only this module (and the command modules) print.

Whatever comes from outside (file and folder names, class names, labels, artifact names, error
reasons, notes) is shown literally: table cells are `Text` and interpolated values are escaped, so
a file called "[red]x.png" prints as such instead of being read as console markup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from edgeclf.cli._common import console
from edgeclf.core.printable import printable

MAX_LISTED = 50  # skipped or ignored files listed by name (all of them are in dataset.json)


@contextmanager
def counting(what: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar; yields the progress(done, total) callback a stage calls."""
    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), console=console, transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def dataset_summary(data) -> None:
    """Images per class and split, then the files skipped (with the reason) and ignored."""
    counts = data.counts()
    where = f"{data.pack} (packed from {data.root})" if data.pack else str(data.root)
    table = Table(title=_text(f"{where} ({data.layout})"), show_footer=True)
    table.add_column("class", footer="total")
    for split in counts:
        table.add_column(split, justify="right", footer=str(sum(counts[split].values())))
    for name in data.classes:
        table.add_row(_text(name), *(str(counts[s][name]) for s in counts))
    console.print(table)
    for title, entries in (("skipped", data.skipped), ("ignored", data.ignored)):
        if not entries:
            continue
        why = ":" if title == "skipped" else " (hidden, or outside class folders):"
        console.print(f"[yellow]{title} {len(entries)} file(s)[/]{why}")
        for entry in entries[:MAX_LISTED]:
            console.print(f"  {entry.path}: {entry.reason}", markup=False)
        if len(entries) > MAX_LISTED:
            console.print(f"  ... and {len(entries) - MAX_LISTED} more, listed in dataset.json")


def export_table(result) -> None:
    """One row per artifact: size, validation accuracy, change from float, agreement, check, the
    quantization gate's evidence (images, interval, decision), status; then a line for each gate
    the images could not resolve."""
    table = Table(title=f"validation split: {result.images} images, float Keras accuracy {result.float_accuracy:.2%}")
    columns = ("artifact", "precision", "size", "accuracy", "Δ pts", "agreement", "check", "gate", "status")
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("artifact", "precision", "check", "gate", "status") else "right"
        )
    notes, repairs = [], []
    for a in result.artifacts:
        v = a.validation
        if "accuracy" not in v:  # failed before it ran (not integer, wrong output)
            table.add_row(
                _text(a.name),
                _text(a.precision),
                f"{a.bytes / 1024:.0f} KiB",
                "-",
                "-",
                "-",
                _text(v["check"]),
                "-",
                "[red]FAILED[/]",
            )
            continue
        if v["check"] in ("max_abs_diff", "p99_abs_diff"):  # p99: bf16's tolerance is on the 99th percentile
            check = f"{v['check'][:3]}|Δp| {v[v['check']]:.1e}"
        else:
            check = f"drop ≤ {v['max_drop']:g}"
        status = "[green]ok[/]" if a.status == "ok" else "[red]FAILED[/]"
        if v.get("note"):
            notes.append(f"{a.name}: {v['note']}")
        if v.get("repaired_by"):
            status = "[yellow]repaired[/]"
        record = a.repair_record
        if record.get("float_layers") and a.status == "ok":
            repairs.append(
                f"{a.name}: {len(a.float_layers)} layer(s) kept in float ({record['float_macs_share']:.1%} of the "
                f"MACs), repairing {', '.join(record['repairs'])}"
            )
        table.add_row(
            _text(a.name),
            _text(a.precision),
            f"{a.bytes / 1024:.0f} KiB",
            f"{v['accuracy']:.2%}",
            f"{-v['drop_points']:+.2f}",
            f"{v['agreement_with_float']:.2%}",
            check,
            _text(gate_cell(v)),
            status,
        )
    console.print(table)
    for note in notes:
        console.print(_text(f"inconclusive: {note} (kept as passing; more validation images would decide)"))
    for line in repairs:
        console.print(_text(f"repaired: {line}"))


def _text(value, **kwargs) -> Text:
    """A table cell or line as literal text, its control and bidi characters escaped (names come
    from folders and artifacts.json: edgeclf.core.printable)."""
    return Text(printable(value), **kwargs)


def gate_cell(validation: dict) -> str:
    """The gate's decision with its images and interval: 'pass, 1000 img, -0.3..+0.4 pts'."""
    gate = validation.get("gate")
    if not gate:
        return "-"
    lo, hi = gate["interval"]
    if gate["quantity"] == "drop_points":
        span = f"{lo:+.1f}..{hi:+.1f} pts"
    else:
        span = f"{100 * lo:.1f}..{100 * hi:.1f} %"
    return f"{validation.get('decision', gate['decision'])}, {gate['images']} img, {span}"


@contextmanager
def verdicts_on_failure() -> Iterator[None]:
    """Show the export table before a ValidationFailed (raised with its result) ends the command."""
    from edgeclf.export.errors import ValidationFailed

    try:
        yield
    except ValidationFailed as exc:
        if getattr(exc, "result", None) is not None:
            export_table(exc.result)
        raise


def eval_table(result) -> None:
    table = Table(title=f"{result.split} split ({result.images} images)")
    for column in ("artifact", "precision", "accuracy", "top-5", "macro F1", "Δ pts", "agreement"):
        table.add_column(column, justify="left" if column in ("artifact", "precision") else "right")
    for s in result.scores:
        top5 = f"{s.metrics['top5_accuracy']:.2%}" if "top5_accuracy" in s.metrics else "-"
        table.add_row(
            _text(s.name),
            _text(s.precision),
            f"{s.accuracy:.2%}",
            top5,
            f"{s.metrics['macro']['f1']:.4f}",
            f"{s.delta_points:+.2f}",
            f"{s.agreement_with_float:.2%}",
        )
    console.print(table)


def bench_table(document: dict) -> None:
    """Per artifact: size, load, first inference, invoke percentiles at batch 1, throughput, peak
    memory and speedups; then bench's notes."""
    from edgeclf.runtime.timing import headline_batch

    d = document["device"]
    table = Table(title=f"{d['cpu']} ({d['cores']} cores, {d['threads']} threads, {d['device']})")
    columns = (
        "artifact",
        "size",
        "load ms",
        "first ms",
        "invoke p50",
        "p90",
        "p99",
        "img/s b1",
        "max img/s",
        "RSS MB",
        "× keras",
        "× fp32",
        "repair ms ×",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "artifact" else "right")

    def times(value):
        return f"{value:.2f}×" if value else "-"

    for r in document["artifacts"].values():
        b1 = headline_batch(r)
        best = max(b["throughput_ips"] for b in r["batches"])
        table.add_row(
            _text(r["name"] + (" (failed, repaired)" if "status" in r else "")),
            f"{r['file_bytes'] / 1024:.0f} KiB",
            f"{r['load_ms']:.1f}",
            f"{r['first_inference_ms']:.2f}",
            f"{b1['p50_ms']:.3f}",
            f"{b1['p90_ms']:.3f}",
            f"{b1['p99_ms']:.3f}",
            f"{b1['throughput_ips']:.0f}",
            f"{best:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            times(r["speedup_vs_keras"]),
            times(r["speedup_vs_runtime_fp32"]),
            times(r.get("vs_full_int8")),
        )
    console.print(table)
    for note in document["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}")


def predict_table(result) -> None:
    table = Table(title=_text(f"{result.artifact} ({result.engine})"))
    table.add_column("image")
    table.add_column("top-k (probability)")
    table.add_column("invoke ms", justify="right")
    for r in result.results:
        if "error" in r:
            table.add_row(_text(r["image"]), _text((r["error"]), style="red"), "")
        else:
            labels = ", ".join(f"{p['label']} ({p['probability']:.3f})" for p in r["top_k"])
            table.add_row(_text(r["image"]), _text(labels), f"{r['invoke_ms']:.3f}")
    console.print(table)


def watch_line(result: dict) -> None:
    if "error" in result:
        console.print(f"{escape(printable(result['image']))}: [red]{escape(printable(result['error']))}[/]")
    else:
        console.print(
            f"{printable(result['image'])}: {printable(result['label'])} {result['probability']:.3f} "
            f"(invoke {result['invoke_ms']:.2f} ms)",
            markup=False,
        )


def verify_lines(result) -> None:
    ref, here = result.reference_machine, result.machine
    console.print(
        f"{result.samples} sample images; outputs recorded on {ref.get('cpu', '?')} ({ref.get('machine', '?')}), "
        f"checked on {here['cpu']} ({here['machine']})"
    )
    for check in result.checks:
        verdict = "[yellow]SKIP[/]" if check.skipped else "[green]PASS[/]" if check.passed else "[red]FAIL[/]"
        console.print(f"{verdict} {escape(check.artifact)}: " + escape("; ".join(check.details)), markup=True)


def timings_table(title: str, steps: dict[str, float]) -> None:
    """A stage's steps with their seconds and share of the whole (edgeclf --verbose)."""
    total = sum(steps.values()) or 1.0
    table = Table(title=f"{title}: {total:.1f} s")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for step, seconds in steps.items():
        table.add_row(_text(step), f"{seconds:.2f}", f"{seconds / total:.0%}")
    console.print(table)


def doctor_table(report) -> None:
    """One row per check; a problem's fix in its own column."""
    table = Table(title="edgeclf doctor")
    for column in ("check", "status", "detail", "what to do"):
        table.add_column(column)
    colour = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "red"}
    for c in report.checks:
        table.add_row(_text(c.name), Text(c.status, style=colour[c.status]), _text(c.detail), _text(c.fix or "-"))
    console.print(table)
