"""Shared pieces of the quantization levers (one module per scheme beside this one).

A quantization lever asks the session for a quantized copy of its model (Plan.quantization;
harness.quantize does the work on any nn.Module) and proves it by the census of linear layers:
how many were replaced, and by what. Quantization changes the answer a little by design, so
these levers are lossy: their outputs are checked against the baseline stack's to the one
stated tolerance below, never exactly.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from harness.levers import ALL_DEVICE_TYPES, ALL_DTYPES, Lever, LeverNotInEffect, Tolerance
from harness.quantize import scheme, unavailable

# Families whose runners make a quantized copy in their session (DecoderSession does, for llama
# and chameleon). HSTU is left out: its few small linears (fused uvqk, output) are not where
# its time goes, and its output check is a score comparison of its own.
QUANT_FAMILIES = frozenset({"llama", "chameleon", "seamless"})

# Why top-5 and not top-1: with random weights the top two logits of a tiny model are a few
# hundredths apart (median 0.02 measured here), less than int8 rounding moves them, so greedy
# top-1 choices flip often without anything being wrong (int8 dq: ~89% top-1 over 256
# teacher-forced positions). The baseline's token staying among the quantized model's five
# best at (almost) every position is what a working int8/int4 model keeps; a broken kernel
# or scale does not. Top-1 agreement is recorded and shown beside it.
QUANT_TOLERANCE = Tolerance(
    metric="top5_agreement",
    minimum=0.95,
    why="teacher-forced: the baseline's token among the quantized stack's 5 best logits",
)


def configure(plan, name: str):
    return dataclasses.replace(plan, quantization=name)


def evidence(session, name: str) -> dict:
    quantized = getattr(session, "quantized", None)
    if quantized is None or quantized.scheme != name:
        raise LeverNotInEffect(f"{name}: the session runs an unquantized model")
    found = quantized.evidence()
    if found["replaced"] < 1:
        raise LeverNotInEffect(f"{name}: no linear layer was replaced ({found['kept_float']} kept float)")
    return found


def brief(found: dict) -> str:
    kinds = " ".join(f"{kind}x{count}" for kind, count in found["replaced_by"].items())
    return f"{found['replaced']}/{found['linears']} linears -> {kinds}"


def quant_lever(name: str, device_types=ALL_DEVICE_TYPES, dtypes=ALL_DTYPES) -> Lever:
    return Lever(
        name=name,
        slot="quantization",
        summary=scheme(name).summary,
        configure=partial(configure, name=name),
        evidence=partial(evidence, name=name),
        brief=brief,
        families=QUANT_FAMILIES,
        device_types=frozenset(device_types),
        dtypes=frozenset(dtypes),
        tolerance=QUANT_TOLERANCE,
        unavailable=partial(unavailable, name),
    )
