"""Beam search's KV-cache reorder done in place, into fixed buffers (SeamlessM4T v2).

Baseline (transformers' reorder_cache): per layer, self- and cross-attention keys and values
each replaced by an index_select copy, 4 x layers new tensors per step (the PyTorch blog counted
96 for the 24-layer text decoder). The lever gathers the self-attention cache's filled prefix and
copies it back into the same buffers (what CUDA graphs need: captured kernels keep reading the
same addresses), and leaves the cross-attention cache alone (beams of one input share its rows).
Needs the static cache: a dynamic cache reallocates its buffers every step anyway.

Evidence, from one probe reorder outside timing (identity order, so the cache is unchanged):
tensors reordered per step against the baseline's count, aten ops dispatched, buffers whose
address changed (must be 0), and the reorder calls of the timed runs (one per decoder step).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from harness.levers import Lever, LeverNotInEffect

if TYPE_CHECKING:
    import torch

# Ops that only move data and views that do not touch it: not counted as work.
VIEW_OPS = frozenset({"slice", "view", "alias", "select", "detach", "_to_copy", "lift_fresh"})


def op_counter():
    """A dispatch mode counting the aten ops run under it (views and moves aside); the class is
    made on first use, so that importing the lever registry imports no torch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: Counter = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name not in VIEW_OPS:
                self.ops[name] += 1
            return func(*args, **(kwargs or {}))

    return OpCounter()


def cache_buffers(kv) -> list[torch.Tensor]:
    return [
        buffer
        for cache in (kv.self_attention_cache, kv.cross_attention_cache)
        for layer in cache.layers
        if getattr(layer, "is_initialized", False)
        for buffer in (layer.keys, layer.values)
    ]


def probe_reorder(session) -> dict:
    """Run the session's reorder once (identity order) and count what it did."""
    kv = session.kv
    buffers = cache_buffers(kv)
    if not buffers:
        raise LeverNotInEffect("kv reorder: the cache is empty (no generation ran in this session)")
    import torch

    before = [buffer.data_ptr() for buffer in buffers]
    identity = torch.arange(buffers[0].shape[0], device=buffers[0].device)
    with op_counter() as counter:
        session.reorder_fn(kv, identity, session.max_cache_len)
    after = [buffer.data_ptr() for buffer in cache_buffers(kv)]
    layers = session.model.config.decoder_layers
    gathers = counter.ops["index_select"] + counter.ops["index"]
    return {
        "reorder": session.plan.kv_reorder,
        "tensors_per_step": gathers,
        "index_select_tensors_per_step": 4 * layers,  # the baseline's count for this model
        "aten_ops_per_step": dict(sorted(counter.ops.items())),
        "buffers_replaced_per_step": sum(1 for a, b in zip(before, after, strict=True) if a != b),
        "reorders_per_step": session.reorders / session.steps if session.steps else 0.0,
    }


def configure(plan):
    return dataclasses.replace(plan, kv_reorder="inplace")


def evidence(session) -> dict:
    found = probe_reorder(session)
    layers = session.model.config.decoder_layers
    if found["reorder"] != "inplace" or found["buffers_replaced_per_step"] or found["tensors_per_step"] != 2 * layers:
        raise LeverNotInEffect(f"inplace-reorder: {found}")
    if not session.reorders:
        raise LeverNotInEffect("inplace-reorder: beam search never reordered the cache")
    return found


def beam_search_only(case) -> str:
    return "needs beam search (this case is greedy)" if case.beams == 1 else ""


LEVER = Lever(
    name="inplace-reorder",
    slot="kv_reorder",
    summary="beam-search KV-cache reorder in place into fixed buffers (self-attention only)",
    configure=configure,
    brief=lambda found: (
        f"{found['tensors_per_step']} tensors/step (index_select: {found['index_select_tensors_per_step']}), "
        f"{found['buffers_replaced_per_step']} buffers replaced"
    ),
    evidence=evidence,
    needs=frozenset({"beam_reorder"}),
    requires=("static",),
    case_reason=beam_search_only,
)
