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
