"""Tables as Markdown and as HTML (cells escaped), shared by edgeclf report and edgeclf compare. A
new report column is a name in report.COLUMNS and a key in report.rows(); both renderers take it."""

from __future__ import annotations

import html


def md_table(table_rows: list[dict], columns) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in table_rows]
    return "\n".join(lines)


def html_table(table_rows: list[dict], columns) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in columns) + "</tr>" for r in table_rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
