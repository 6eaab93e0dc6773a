"""Shared evidence for the recommender's batch layouts: how many tokens the encoder really ran.

The session records, per run, the batch size, its longest history, its real events and the
tokens the encoder was handed (read from the tensors themselves), so a layout that did not
apply shows in the counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from harness.levers import LeverNotInEffect


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


def layout_lever(name: str, summary: str, expected_tokens: Callable):
    from functools import partial

    from harness.levers import RECOMMENDER_FAMILIES, Lever

    return Lever(
        name=name,
        slot="layout",
        summary=summary,
        configure=partial(set_layout, layout=name),
        brief=brief,
        evidence=partial(layout_evidence, wanted=name, expected_tokens=expected_tokens),
        families=RECOMMENDER_FAMILIES,
    )
