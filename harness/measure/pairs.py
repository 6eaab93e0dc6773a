"""Interleaved A/B pairs: two named sides run in alternating order, so that machine noise hits
both alike, and a ratio of their medians."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from harness.analyse.stats import median

T = TypeVar("T")


def run_pairs(sides: Mapping[str, Callable[[], T]], pairs: int) -> dict[str, list[T]]:
    """Call two named zero-argument callables `pairs` times each, in pairs of alternating order:
    pair index even runs the first side then the second, odd the second then the first (so
    neither always runs on a warmer cache). Returns each side's outputs in call order."""
    if len(sides) != 2:
        raise ValueError(f"a pair has two sides, got {len(sides)}: {', '.join(sides)}")
    first, second = sides
    outputs: dict[str, list[T]] = {first: [], second: []}
    for index in range(pairs):
        for name in (first, second) if index % 2 == 0 else (second, first):
            outputs[name].append(sides[name]())
    return outputs


def ratio_of_medians(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """median(numerator) / median(denominator): > 1 when the numerator's side is slower."""
    return median(numerator) / median(denominator)

