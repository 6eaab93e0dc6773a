"""The A/B schedule: which side runs first in each round pair, which cases in what order, which
iterations. Pure and seeded, so a rerun with the same seed measures in the same order."""

from __future__ import annotations

import random
from collections.abc import Sequence

SIDES = ("base", "head")


def abba_orders(pairs: int, seed: int) -> list[tuple[str, str]]:
    """Side order of each round pair: ABBA ABBA ... (or BAAB ..., by the seed). Alternating which side
    goes first cancels a linear drift within every two pairs, and a seeded start keeps either side
    from always following the other's warm caches."""
    if pairs < 0:
        raise ValueError(f"pairs must be at least 0, got {pairs}")
    first = SIDES if random.Random(seed).random() < 0.5 else SIDES[::-1]
    return [first if index % 2 == 0 else first[::-1] for index in range(pairs)]


def case_order(case_ids: Sequence[str], pair: int, seed: int) -> list[str]:
    """The order the still-running cases take in one round pair: a shuffle seeded by pair."""
    ordered = sorted(case_ids)
    random.Random(f"{seed}:{pair}").shuffle(ordered)
    return ordered


def round_iterations(pair: int, per_round: int, draws: int) -> list[int]:
    """The draw indices one round pair runs on both sides: the next `per_round` of the case's
    `draws` seeded length draws, cycling, so both sides time the same lengths in every pair."""
    if per_round < 1 or draws < 1:
        raise ValueError(f"per_round and draws must be at least 1, got {per_round} and {draws}")
    return [(pair * per_round + offset) % draws for offset in range(per_round)]
