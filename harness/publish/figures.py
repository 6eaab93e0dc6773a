"""Figures for the charts: matplotlib's Agg backend (no display needed), saved once per format."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("png", "svg")
DPI = 120


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported on first use (matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, stem: Path) -> list[Path]:
    """Write `stem.png` and `stem.svg` (FORMATS), close the figure, and return the paths."""
    stem = Path(stem)
    paths = []
    for fmt in FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        figure.savefig(path, format=fmt, dpi=DPI)
        paths.append(path)
    pyplot().close(figure)
    return paths
