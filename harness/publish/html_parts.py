"""HTML building blocks of the run report (harness/publish/run_report.py): escaped cells, tables
whose headers sort them (numbers numerically), figures embedded as data: URIs, and the page with
its style and script inline. The page loads nothing: its Content-Security-Policy forbids every
fetch but data: images, so a stray URL in a record cannot reach the network either."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.publish.figures import pyplot


@dataclass(frozen=True)
class Cell:
    text: str  # plain text (escaped when written); a newline becomes a line break
    sort: float | None = None  # what a numeric column sorts by; None (nothing measured) sorts last
    css: str = ""  # "bad" (a failed case, a regression), "warn" (contended, not judged), "good"


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False  # sorted by each cell's number, not by its text


STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1500px; color: #222; padding: 0 1em; }
h2 { border-top: 1px solid #ccc; padding-top: 0.8em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.bad { color: #b00020; font-weight: bold; }
td.warn { color: #9a6700; }
td.good { color: #1a7f37; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; font-size: 0.9em; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; }
figcaption, .note { font-size: 0.85em; color: #555; }
nav a { margin-right: 1em; }
"""

# Click a header to sort by its column, again to reverse; cells with data-sort compare as numbers
# (an empty one, nothing measured, stays last either way), the others as text.
SORT_SCRIPT = """
function sortKey(row, index) {
  const cell = row.cells[index];
  if (cell.dataset.sort === undefined) return cell.textContent;
  return cell.dataset.sort === "" ? null : parseFloat(cell.dataset.sort);
}
function sortBy(th) {
  const table = th.closest("table"), body = table.tBodies[0], index = th.cellIndex;
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = sortKey(a, index), y = sortKey(b, index);
    if (x === null || y === null) return (x === null) - (y === null);
    const order = typeof x === "number" ? x - y : x.localeCompare(y, undefined, {numeric: true});
    return ascending ? order : -order;
  });
  rows.forEach(row => body.appendChild(row));
}
document.querySelectorAll("table.sortable th").forEach(th => th.addEventListener("click", () => sortBy(th)));
"""

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def text_html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def sort_value(value: float | None) -> str:
    """A number as JavaScript's parseFloat reads it back ("" for nothing measured)."""
    if value is None or math.isnan(value):
        return ""
    return repr(float(value)) if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")


def cell_html(cell: Cell, numeric: bool) -> str:
    classes = " ".join(name for name in ("num" if numeric else "", cell.css) if name)
    attributes = f' class="{classes}"' if classes else ""
    if numeric:
        attributes += f' data-sort="{sort_value(cell.sort)}"'
    return f"<td{attributes}>{text_html(cell.text)}</td>"


def table_html(table_id: str, caption: str, columns: Sequence[Column], rows: Sequence[Sequence[Cell]],
               sortable: bool = True) -> str:
    kind = "sortable" if sortable else "plain"
    tip = ' title="click to sort"' if sortable else ""
    head = "".join(f"<th{tip}>{html.escape(column.header)}</th>" for column in columns)
    body = "\n".join(
        "<tr>" + "".join(cell_html(cell, column.numeric) for cell, column in zip(row, columns, strict=True)) + "</tr>"
        for row in rows
    )
    return (f'<table id="{html.escape(table_id)}" class="{kind}"><caption>{html.escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>")


def svg_uri(figure) -> str:
    """A matplotlib figure as an SVG data: URI (never a file: the page is the only output)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    pyplot().close(figure)
    return f"data:image/svg+xml;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def figure_html(figure_id: str, title: str, uri: str, caption: str) -> str:
    return (f'<figure id="{html.escape(figure_id)}"><img src="{uri}" alt="{html.escape(title)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def note_html(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def page_html(title: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The document: a heading, links to each (anchor, heading, body) section, the sections."""
    links = "".join(f'<a href="#{anchor}">{html.escape(heading)}</a>' for anchor, heading, _ in sections)
    body = "\n".join(f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>\n{text}</section>'
                     for anchor, heading, text in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<link rel="icon" href="data:,">'  # no favicon request: the page loads nothing
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav>{links}</nav>\n{body}\n"
        f"<script>{SORT_SCRIPT}</script>\n</body></html>\n"
    )
