"""The recommender's batch layouts, one row each: `padded` (each batch padded to its longest
history, the baseline), `fixed` (every batch padded to the workload's longest possible history:
fixed shapes, the precondition for CUDA graphs and recompile-free compile, at the most padding)
and `jagged` (histories packed into [tokens, dim] with offsets: the linear layers see only real
events and attention costs the sum of squared lengths instead of batch x longest squared).

Evidence: how many tokens the encoder really ran.

The session records, per run, the batch size, its longest history, its real events and the
tokens the encoder was handed (read from the tensors themselves), so a layout that did not
apply shows in the counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

from harness.levers import Lever, LeverNotInEffect


def set_layout(plan, layout: str):
    return dataclasses.replace(plan, layout=layout)


def layout_evidence(session, wanted: str, expected_tokens: Callable) -> dict:
    """expected_tokens(session, count) -> the tokens this layout must compute for one batch."""
    counts = session.token_counts
    if session.layout != wanted or not counts:
        raise LeverNotInEffect(f"{wanted}: the session ran layout {session.layout!r} over {len(counts)} batch(es)")
    for count in counts:
        if count.computed != expected_tokens(session, count):
            raise LeverNotInEffect(f"{wanted}: a batch of {count.real} events computed {count.computed} tokens")
    real = sum(count.real for count in counts)
    computed = sum(count.computed for count in counts)
    return {"layout": wanted, "real_tokens": real, "computed_tokens": computed, "batches": len(counts)}


def brief(evidence: dict) -> str:
    return f"computed/real={evidence['computed_tokens'] / evidence['real_tokens']:.2f}"


def layout_lever(name: str, summary: str, expected_tokens: Callable) -> Lever:
    return Lever(
        name=name,
        slot="layout",
        summary=summary,
        configure=partial(set_layout, layout=name),
        brief=brief,
        evidence=partial(layout_evidence, wanted=name, expected_tokens=expected_tokens),
        needs=frozenset({"layouts"}),
    )


LEVERS = (
    layout_lever(
        "padded", "batches padded to their longest history (the baseline)",
        expected_tokens=lambda session, count: count.batch * count.longest,
    ),
    layout_lever(
        "fixed", "batches padded to the workload's longest possible history (fixed shapes)",
        expected_tokens=lambda session, count: count.batch * session.fixed_len,
    ),
    layout_lever(
        "jagged", "histories packed into one [tokens, dim] tensor with offsets",
        expected_tokens=lambda session, count: count.real,
    ),
)
