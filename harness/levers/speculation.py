"""The two speculative levers, rows of one table: the plan change and the evidence they share.

`selfspec`: self-speculative decoding (LayerSkip style): the model's first `exit_layer` layers
draft, the full model verifies (0: half the depth). With random weights acceptance is near 0;
see harness/spec/weights.py for the labelled synthetic weights that exercise acceptance on the CPU.
`lookup`: prompt-lookup decoding: drafts copied from where the last n-gram occurred before,
verified by the full model. No draft model; it pays off where outputs repeat their inputs.
Evidence: acceptance rate, mean accepted length, draft and verify forwards per output token.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from harness.levers import Lever, LeverNotInEffect


def configure_drafting(plan, method: str):
    """The plan's Drafting from the case's lever parameters (Case.params via plan_for)."""
    from harness.families.speculative import Drafting

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


# The decoder runner's loop has it (llama); chameleon's select/encode loop has none.
NEEDS = frozenset({"speculative_loop"})
LEVERS = (
    Lever(
        name="selfspec", slot="decoding",
        summary="self-speculative decoding: early-exit drafts verified by the full model",
        configure=partial(configure_drafting, method="selfspec"), evidence=drafting_evidence, brief=brief,
        needs=NEEDS, params={"exit_layer": "exit", "draft_len": "draft"},  # RunOptions field -> id token
    ),
    Lever(
        name="lookup", slot="decoding",
        summary="prompt-lookup decoding: n-gram drafts verified by the full model",
        configure=partial(configure_drafting, method="lookup"), evidence=drafting_evidence, brief=brief,
        needs=NEEDS, params={"max_ngram": "ngram", "draft_len": "draft"},
        # Why: lookup drafts only once the text repeats; 8 tokens of a random model rarely do, 32 do.
        quick_tokens=32,
    ),
)
