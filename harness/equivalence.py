"""Output equivalence: a lever that changes the answer is a failure, not a speed-up."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mismatch:
    row: int
    position: int
    expected: int | None
    got: int | None

    def describe(self) -> str:
        return (
            f"outputs differ from the baseline stack at batch row {self.row}, token {self.position}: "
            f"expected {self.expected}, got {self.got}"
        )


def first_mismatch(expected: torch.Tensor, got: torch.Tensor) -> Mismatch | None:
    """First (row, position) where two [batch, tokens] greedy outputs differ, or None."""
    rows = max(expected.shape[0], got.shape[0])
    for row in range(rows):
        want = expected[row].tolist() if row < expected.shape[0] else []
        have = got[row].tolist() if row < got.shape[0] else []
        for position in range(max(len(want), len(have))):
            a = want[position] if position < len(want) else None
            b = have[position] if position < len(have) else None
            if a != b:
                return Mismatch(row, position, a, b)
    return None
