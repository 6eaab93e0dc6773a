"""The contract between levers and runners: a stack's levers turn a default Plan into the one
a runner's session is built from (harness.families.base)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.levers import LEVERS


@dataclass(frozen=True)
class Plan:
    """What the levers of a stack decide before a session is built; each runner reads the
    fields that apply to it, and each lever's evidence proves it took effect."""

    attn_implementation: str = "eager"
    cache: str = "dynamic"  # "dynamic" | "static"
    step_wrappers: tuple[tuple[str, Callable], ...] = ()  # (lever, factory(step, session) -> step)
    layout: str = "padded"  # recommender batches: "padded" | "fixed" | "jagged"
    pointwise_attention: str = "torch"  # HSTU attention: "torch" | "flex"
    quantization: str = ""  # a scheme of harness.levers.quantize_model.SCHEMES: the session runs a quantized copy
    drafting: object = None  # harness.families.speculative.Drafting: speculative greedy decoding (None: plain greedy)
    lever_params: tuple[tuple[str, int], ...] = ()  # Case.params: the stack's levers' parameters
    kv_reorder: str = "index_select"  # beam-search KV-cache reorder: "index_select" | "inplace"


def plan_for(stack: tuple[str, ...], params: tuple[tuple[str, int], ...] = ()) -> Plan:
    plan = Plan(lever_params=params)
    for name in stack:
        plan = LEVERS.get(name).configure(plan)
    return plan
