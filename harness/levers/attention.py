"""Attention-implementation levers: `eager` (transformers' matmul + softmax + matmul, the
baseline) and `sdpa` (torch.nn.functional.scaled_dot_product_attention); the evidence is which
operators really ran."""

from __future__ import annotations

from functools import partial

from harness.levers import Lever, LeverNotInEffect

# Operator names that only one of the implementations launches (see docs/facts.md, profiler names).
SDPA_OP_PREFIXES = ("aten::scaled_dot_product", "aten::_scaled_dot_product", "aten::_flash_attention", "aten::_efficient_attention")
EAGER_OP_NAMES = ("aten::softmax", "aten::_softmax")


def attention_ops(session) -> list[str]:
    """Attention operator names of the session's probe (a decoder's: one decode step over its own
    cache), profiled outside any timed region; the aten::_* op names the SDPA backend."""
    op_names = session.probe_op_names()
    return sorted(name for name in op_names if name.startswith(SDPA_OP_PREFIXES) or name in EAGER_OP_NAMES)


def attention_evidence(session, wanted: str) -> dict:
    implementation = session.model.config._attn_implementation
    ops = attention_ops(session)
    uses_sdpa = any(op.startswith(SDPA_OP_PREFIXES) for op in ops)
    if implementation != wanted or uses_sdpa != (wanted == "sdpa"):
        raise LeverNotInEffect(f"{wanted}: model runs {implementation!r} attention, operators seen: {ops}")
    return {"attn_implementation": implementation, "attention_ops": ops}


def set_attention(plan, implementation: str):
    import dataclasses

    return dataclasses.replace(plan, attn_implementation=implementation)


def sdpa_evidence(session) -> dict:
    found = attention_evidence(session, wanted="sdpa")
    backends = sdpa_backends()
    return {**found, "sdpa_backends_enabled": backends} if backends else found


def sdpa_backends() -> dict:
    """Which fused SDPA kernels this torch build allows (CUDA only; the CPU has one path)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    cuda = torch.backends.cuda
    return {
        "flash": cuda.flash_sdp_enabled(),
        "mem_efficient": cuda.mem_efficient_sdp_enabled(),
        "math": cuda.math_sdp_enabled(),
        "cudnn": cuda.cudnn_sdp_enabled(),
    }


def brief(evidence: dict) -> str:
    """The attention operator that ran, without the aten:: prefix."""
    ops = evidence["attention_ops"]
    specific = [op for op in ops if op.startswith("aten::_")] or ops  # aten::_* ops name the backend
    return specific[0].removeprefix("aten::_").removeprefix("scaled_dot_product_") if specific else "?"


NEEDS = frozenset({"hf_attention"})  # transformers' set_attn_implementation
LEVERS = (
    Lever(
        name="eager", slot="attention", summary="eager attention (the baseline)",
        configure=partial(set_attention, implementation="eager"), brief=brief, needs=NEEDS,
        evidence=partial(attention_evidence, wanted="eager"),
    ),
    Lever(
        name="sdpa", slot="attention", summary="fused scaled-dot-product attention",
        configure=partial(set_attention, implementation="sdpa"), brief=brief, needs=NEEDS, evidence=sdpa_evidence,
    ),
)
