"""Workload lengths: fixed points or seeded draws from a length distribution, and seeded inputs."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Shape of each named length distribution; the medians come from the workload itself.
# Why lognormal: request lengths in serving traces are right-skewed (a few long prompts).
DISTRIBUTIONS = {
    "lognormal": {"sigma": 0.5, "max_factor": 4.0},
    # Why: user histories are long-tailed (most users have few events, a few have very many).
    "longtail": {"sigma": 1.0, "max_factor": 8.0},
}
MIN_PROMPT_LEN = 2  # a prompt of one token would give a different prefill graph than the rest


@dataclass(frozen=True)
class Lengths:
    """Prompt and generation lengths: fixed, or medians of a seeded distribution."""

    prompt_len: int
    gen_len: int
    dist: str = ""  # "" = fixed point

    def __post_init__(self) -> None:
        if self.prompt_len < MIN_PROMPT_LEN or self.gen_len < 1:
            raise ValueError(f"lengths must be prompt>={MIN_PROMPT_LEN}, gen>=1: {self}")
        if self.dist and self.dist not in DISTRIBUTIONS:
            raise ValueError(f"unknown length distribution {self.dist!r}; allowed: {sorted(DISTRIBUTIONS)}")

    @property
    def token(self) -> str:
        fixed = f"p{self.prompt_len}-g{self.gen_len}"
        return f"{self.dist}-{fixed}" if self.dist else fixed

    def draws(self, count: int, seed: int) -> list[tuple[int, int]]:
        """(prompt_len, gen_len) per iteration; the same for every stack of a case."""
        if not self.dist:
            return [(self.prompt_len, self.gen_len)] * count
        shape = DISTRIBUTIONS[self.dist]
        rng = random.Random(f"{seed}-{self.token}")
        return [
            (
                draw_length(rng, self.prompt_len, shape, MIN_PROMPT_LEN),
                draw_length(rng, self.gen_len, shape, 1),
            )
            for _ in range(count)
        ]

    def max_total_len(self) -> int:
        factor = DISTRIBUTIONS[self.dist]["max_factor"] if self.dist else 1.0
        return math.ceil(self.prompt_len * factor) + math.ceil(self.gen_len * factor)


def draw_length(rng: random.Random, median: int, shape: dict, minimum: int) -> int:
    value = round(median * math.exp(rng.gauss(0.0, shape["sigma"])))
    return max(minimum, min(value, math.ceil(median * shape["max_factor"])))


def prompt_ids(batch_size: int, prompt_len: int, vocab_size: int, seed: int) -> torch.Tensor:
    """Seeded token ids on the CPU; the same for every stack and device."""
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + prompt_len * 101 + batch_size)
    return torch.randint(0, vocab_size, (batch_size, prompt_len), generator=generator)
