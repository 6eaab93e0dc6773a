"""Where tables go: a terminal console wide enough for case ids, and Markdown tables for CI job summaries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def wide_console():
    """A rich console wide enough for case ids, also when the output is piped."""
    from rich.console import Console

    return Console(width=max(Console().width, 160))


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table's lines: the header, its rule, and one line per row (a `|` in a cell escaped)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
