"""What the two speculative levers (selfspec, lookup) share: the plan change and the evidence."""

from __future__ import annotations

import dataclasses

from harness.levers import LeverNotInEffect
from harness.speculative import Drafting

# Lever parameters: RunOptions field -> its short form in case ids (e.g. "exit2-draft4").
PARAM_TOKENS = {"exit_layer": "exit", "draft_len": "draft", "max_ngram": "ngram"}


def configure_drafting(plan, method: str):
    """The plan's Drafting from the case's lever parameters (Case.params via plan_for)."""
    params = dict(plan.lever_params)
    fields = {name: params[name] for name in ("draft_len", "exit_layer", "max_ngram") if name in params}
    return dataclasses.replace(plan, drafting=Drafting(method, **fields))


def drafting_evidence(session) -> dict:
    """Acceptance bookkeeping over every generation of the session; a lever that never drafted
    did not take effect (the run was plain greedy decoding under its name)."""
    drafting = session.plan.drafting
    book = getattr(session, "speculation", None)
    if drafting is None or book is None or book.rounds == 0:
        raise LeverNotInEffect("speculative decoding: the session never ran the speculative loop")
    if book.drafted == 0:
        raise LeverNotInEffect(f"{drafting.method}: no token was ever drafted in {book.rounds} verify forwards")
    params = {name: value for name, value in dataclasses.asdict(drafting).items() if value and name != "method"}
    return {**params, **book.summary()}


def brief(found: dict) -> str:
    return (
        f"accept {found['acceptance_rate']:.0%} mean_len {found['mean_accepted_len']:.2f} "
        f"verifies/token {found['verifies_per_token']:.2f}"
    )
