"""Tables as Markdown and as HTML (cells escaped), shared by edgeclf report and edgeclf compare. A
new report column is a name in report.COLUMNS and a key in report.rows(); both renderers take it."""

from __future__ import annotations

import html
import re


def md_table(table_rows: list[dict], columns) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in table_rows]
    return "\n".join(lines)


NUMBER = re.compile(r"^[-+]?[\d.,]+ ?[%×x]?$")


def html_table(table_rows: list[dict], columns, marked: frozenset[str] = frozenset()) -> str:
    """A table in a scrolling box (a wide table never widens the page); cells that are numbers
    right-aligned (class n), the rows whose "artifact" is in `marked` marked (class recommended)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)

    def cell(value) -> str:
        text = str(value)
        return f"<td class='{'n' if NUMBER.match(text) else 't'}'>{html.escape(text)}</td>"

    body = "".join(
        f"<tr{' class=recommended' if r.get('artifact') in marked else ''}>"
        + "".join(cell(r[c]) for c in columns)
        + "</tr>"
        for r in table_rows
    )
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
