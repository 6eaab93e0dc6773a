"""One row of the results tables: a case's figures as the terminal and profile tables show them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.publish.units import EMPTY


@dataclass(frozen=True)
class Row:
    case_id: str
    status: str
    ttft_p50_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tokens_per_s: float | None
    peak_mem_bytes: int | None
    speedup: float | None
    outputs_match: bool | None
    evidence: str
    e2e_p50_s: float | None = None
    stages_p50_s: tuple[tuple[str, float], ...] = ()  # (stage, median seconds), in the runner's order
    # Where the time goes (the profiled iteration): per phase top categories, idle share, SoL.
    top: Mapping = field(default_factory=dict)  # phase -> "attention 50% linear 10% ..."
    idle_frac: Mapping = field(default_factory=dict)
    sol_frac: Mapping = field(default_factory=dict)
    ops_per_token: float | None = None
    ops_unit: str = ""
    agreement: str = EMPTY  # lossy stacks: the gated agreement figure vs its stated minimum
    # Speculative decoding: time per full-model forward (a round: drafts + verify) differs from
    # TPOT; acceptance over the timed iterations (harness/families/speculative.py).
    forward_p50_s: float | None = None
    acceptance_rate: float | None = None
    mean_accepted_len: float | None = None
    family: str = ""  # each family gets its own table (its own columns), ids shown without it
