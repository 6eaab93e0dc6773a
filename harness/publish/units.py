"""How numbers read in the terminal tables: their units and one formatting rule."""

from __future__ import annotations

MS_PER_S = 1e3
BYTES_PER_MIB = 1024 * 1024
EMPTY = "—"  # a cell with nothing measured


def fmt(value: float | None, scale: float = 1.0, digits: int = 2, suffix: str = "") -> str:
    """`value * scale` with `digits` decimals and `suffix`; EMPTY for None."""
    return EMPTY if value is None else f"{value * scale:.{digits}f}{suffix}"
