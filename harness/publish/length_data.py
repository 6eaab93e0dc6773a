"""Input and output lengths as data: what each recorded workload drew, the distribution it drew
from, and the committed real length tables beside the synthetic kinds (issue 16's figure).

The tables ship with the package (harness/spec/data/) and reading them imports no torch; the
synthetic curves come from the harness's own seeded generator (harness.spec.workload), so what
is drawn here is what a run would draw.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.analyse.stats import median
from harness.spec.workload import DISTRIBUTIONS, MIN_PROMPT_LEN, TABLES, Lengths, draw_length

SYNTHETIC = ("lognormal", "longtail")  # the parametric kinds, each drawn at the real table's median
CURVE_DRAWS = 4000  # draws per synthetic curve: enough for a smooth CDF, milliseconds to draw
CURVE_SEED = 0

# Axis names per family: what a prompt_len and a gen_len count there.
UNITS = {
    "llama": ("prompt tokens", "generated tokens"),
    "chameleon": ("prompt tokens", "generated tokens (text or image)"),
    "seamless": ("input length (tokens or feature frames, 50 per s)", "generated text tokens"),
    "hstu": ("history events per user", "candidates scored (rank) or top-k (retrieve)"),
}
DEFAULT_UNITS = ("input length", "output length")


@dataclass(frozen=True)
class Drawn:
    """One workload's recorded draws, and the distribution they came from (None for a fixed point,
    or where the record does not say enough to rebuild it)."""

    workload_id: str
    kind: str  # length_dist: "" (fixed), "lognormal", "humaneval", ...
    prompt_lens: list[int]
    gen_lens: list[int]
    source: Lengths | None


def workload_lengths(record: Mapping) -> Lengths | None:
    """The record's Lengths, its scale read back from the workload id (`humaneval-x0.2-p87-g60`)."""
    kind, prompt, gen = record.get("length_dist") or "", record.get("prompt_len"), record.get("gen_len")
    if not kind or not isinstance(prompt, int) or not isinstance(gen, int):
        return None
    found = re.search(rf"(?:^|-){re.escape(kind)}(?:-x([0-9.e+-]+))?-p{prompt}-g{gen}(?:-|$)", record["workload_id"])
    if found is None:
        return None
    try:
        return Lengths(prompt, gen, kind, float(found.group(1) or 1.0))
    except ValueError:
        return None  # a kind or scale this harness no longer knows


def drawn_lengths(records: Sequence[Mapping]) -> list[Drawn]:
    """One entry per workload of a family (every stack of a workload ran the same seeded draws)."""
    found: dict[str, Drawn] = {}
    for record in records:
        prompts, gens = record.get("prompt_lens") or [], record.get("gen_lens") or []
        if record["workload_id"] in found or not prompts:
            continue
        found[record["workload_id"]] = Drawn(record["workload_id"], record.get("length_dist") or "", list(prompts),
                                             list(gens), workload_lengths(record))
    return list(found.values())


def source_curve(lengths: Lengths) -> tuple[list[int], list[int]]:
    """(prompt, gen) lengths the workload draws from: every table row scaled and capped, or
    CURVE_DRAWS seeded draws of its synthetic shape."""
    if lengths.table is not None:
        pairs = [lengths.from_row(row) for row in lengths.table.rows()]
    else:
        pairs = lengths.draws(CURVE_DRAWS, CURVE_SEED)
    return [p for p, _ in pairs], [g for _, g in pairs]


@dataclass(frozen=True)
class RealColumn:
    """One column of a committed table, in harness units, with the synthetic kinds at its median."""

    title: str
    unit: str
    real: list[float]
    synthetic: dict[str, list[int]]


# (table, which length, panel title, unit): every committed table and the lengths it gives.
REAL_COLUMNS = (
    ("humaneval", 0, "HumanEval prompts", "tokens (Llama 2 tokenizer)"),
    ("humaneval", 1, "HumanEval canonical solutions", "tokens (Llama 2 tokenizer)"),
    ("ml100k", 0, "MovieLens-100k user histories", "events per user"),
    ("asterisk", 0, "telephone prompts, English (input)", "feature frames (50 per s of audio)"),
    ("asterisk", 1, "telephone prompts, Spanish (output)", "text tokens (assumed 4 per s)"),
)


def synthetic_at(median_len: float, kind: str, minimum: int) -> list[int]:
    rng = random.Random(f"{CURVE_SEED}-figure-{kind}-{median_len}")
    return [draw_length(rng, max(round(median_len), minimum), DISTRIBUTIONS[kind], minimum) for _ in range(CURVE_DRAWS)]


def real_columns() -> list[RealColumn]:
    """Each committed table's lengths beside lognormal and longtail draws with the same median."""
    out = []
    for name, column, title, unit in REAL_COLUMNS:
        values = sorted(row[column] for row in TABLES[name].rows())
        middle = median(values)
        minimum = MIN_PROMPT_LEN if column == 0 else 1
        out.append(RealColumn(title, unit, values, {kind: synthetic_at(middle, kind, minimum) for kind in SYNTHETIC}))
    return out


def ecdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Sorted values and the share of values at or below each (a step CDF)."""
    ordered = sorted(values)
    count = len(ordered)
    return ordered, [(index + 1) / count for index in range(count)]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (a value the data holds, as the tables' P50/P90 are quoted)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
