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


TOP_K = 5  # the k of `top5_agreement`


def agreement(expected: torch.Tensor, got: torch.Tensor, forced: torch.Tensor) -> dict:
    """How close a lossy stack's outputs are to the baseline's, for a stated tolerance.

    expected, got: [batch, tokens] greedy tokens of the baseline and of the lossy stack, each
    running freely; forced: [batch, tokens, vocab] the lossy stack's scores at each position
    with the baseline's tokens fed back (teacher forcing).
      top1_agreement: share of positions where the lossy stack's best choice is the baseline's token;
      top5_agreement: share where the baseline's token is among its TOP_K best;
      token_agreement: share of equal positions of the two free runs (after a first difference
        the two continue from different text, so this falls fast; shown, not gated);
      first_divergence: the first position where any row of the free runs differs (-1: none).
    """
    reference = expected.to(forced.device)[..., None]  # [batch, tokens, 1]
    ranked = forced.topk(TOP_K, dim=-1).indices
    width = min(expected.shape[1], got.shape[1])
    same = expected[:, :width] == got[:, :width]
    differs = (~same).any(dim=0).nonzero()
    return {
        "top1_agreement": float((ranked[..., :1] == reference).float().mean()),
        f"top{TOP_K}_agreement": float((ranked == reference).any(dim=-1).float().mean()),
        "token_agreement": float(same.float().mean()) if width else 0.0,
        "first_divergence": int(differs[0]) if len(differs) else -1,
        "positions": int(reference.numel()),
    }


# -- near-ties: a divergence that the dtype's rounding can explain ------------------------------
# The unit roundoff of each dtype: 2^-p for p significand bits (8 bfloat16, 11 float16, 24 float32),
# the largest relative error of rounding one value to it.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
# Two scores of one choice (logits) each rounded once to the dtype move their difference by up to
# 2 units of roundoff relative to the largest logit: 2^-7 bfloat16, 2^-10 float16. float32's is
# nominal (1e-5): its roundoff is far below what a different summation order changes.
TIE_RELATIVE = {"float32": 1e-5, "bfloat16": 2 * UNIT_ROUNDOFF["bfloat16"], "float16": 2 * UNIT_ROUNDOFF["float16"]}


@dataclass(frozen=True)
class Tie:
    """One row's first divergence, judged on the baseline's own scores at that position."""

    row: int
    position: int
    expected: int
    got: int
    gap: float  # the baseline's score of its own choice minus that of the produced one
    allowed: float

    @property
    def holds(self) -> bool:
        return abs(self.gap) <= self.allowed

    def describe(self, unit: str = "token") -> str:
        return (f"row {self.row} diverges at {unit} {self.position} ({self.expected} vs {self.got}), "
                f"a near-tie: gap {self.gap:.3g} <= {self.allowed:.3g}")


def row_mismatches(expected: torch.Tensor, got: torch.Tensor) -> list[Mismatch]:
    """Each batch row's first difference; rows that agree are left out."""
    found = (first_mismatch(expected[row : row + 1], got[row : row + 1]) for row in range(expected.shape[0]))
    return [Mismatch(row, m.position, m.expected, m.got) for row, m in enumerate(found) if m is not None]


def greedy_ties(mismatches: list[Mismatch], scores: torch.Tensor, allowed: torch.Tensor) -> list[Tie] | None:
    """The ties at these first divergences, judged on the baseline's own choice scores
    (`scores` [batch, positions, vocab], teacher-forced with its own tokens, so exactly what it
    chose from) against `allowed` [batch, positions]; None when any divergence has a clear gap
    or a missing token (a shorter output is no tie)."""
    ties = []
    for m in mismatches:
        if m.expected is None or m.got is None or m.position >= scores.shape[1]:
            return None
        row = scores[m.row, m.position]
        tie = Tie(m.row, m.position, m.expected, m.got, float(row[m.expected] - row[m.got]), float(allowed[m.row, m.position]))
        if not tie.holds:
            return None
        ties.append(tie)
    return ties


def worst_pair(pairs: list[tuple[float, float]]) -> str:
    """The (gap, allowance) pair closest to its allowance, as a note's figures."""
    gap, allowed = max(pairs, key=lambda pair: abs(pair[0]) / pair[1] if pair[1] else float("inf"))
    return f"gap {gap:.3g} <= {allowed:.3g}"


def tie_note(ties: list[Tie] | None, unit: str = "token") -> str | None:
    """The record's equivalence_note for accepted ties; None when there are none to accept."""
    return "; ".join(tie.describe(unit) for tie in ties) if ties else None
