"""HSTU attention through torch.compile'd flex_attention instead of plain torch ops.

Fused on the device (no [batch, heads, n, n] score tensor, causal blocks skipped); see
harness/families/hstu/flex.py for how the softmax-free attention is expressed. Needs fixed
shapes (the `fixed` layout), so the compiled kernel is built once, during warm-up.
Evidence: the flex path's call count, and that it ran compiled.
"""

import dataclasses

from harness.levers import Lever, LeverNotInEffect


def configure(plan):
    return dataclasses.replace(plan, pointwise_attention="flex")


def evidence(session) -> dict:
    attend = session.attend
    calls = getattr(attend, "calls", 0)
    if session.plan.pointwise_attention != "flex" or not calls:
        raise LeverNotInEffect(f"flex: flex_attention was called {calls} time(s)")
    return {"attention": "flex_attention", "calls": calls, "compiled": attend.compiled}


LEVER = Lever(
    name="flex",
    slot="attention",
    summary="compiled flex_attention for HSTU's pointwise attention",
    configure=configure,
    brief=lambda found: f"flex_attention calls={found['calls']}",
    evidence=evidence,
    needs=frozenset({"pointwise_attention"}),
    requires=("fixed",),
)
