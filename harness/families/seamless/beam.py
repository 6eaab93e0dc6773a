"""SeamlessM4T v2's text decoding loop, greedy or beam search, and beam search's KV-cache reorder.

Per step: choose tokens (greedy argmax, or beam search over summed log-probabilities), reorder
the KV cache to the chosen beams (beam search only), one decoder step. Every hypothesis runs
exactly gen_len tokens (no end-of-sequence stop), so the best beam is the highest summed
log-probability. Clock marks, by name: "prefill", "prefill_choice", then per step "reorder",
"decode", "decode_choice" (the runner's stage_names says which stage each counts to).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from transformers import EncoderDecoderCache


# -- the KV-cache reorder of beam search --------------------------------------------------------
def reorder_index_select(kv: EncoderDecoderCache, beam_idx: torch.Tensor, filled: int) -> None:
    """transformers' reorder: every layer's keys and values, self- and cross-attention, replaced
    by an index_select copy (4 x layers new tensors per step; the blog's 96 for 24 layers).

    Written out rather than calling `layer.reorder_cache`, which first asks `get_seq_length() > 0`:
    a static layer answers with its device-side position counter, so that question is a host sync
    per layer per step on CUDA (tests/test_sync_guard.py), a stall the in-place lever would then
    seem to remove. Decoding has always filled every layer by the first reorder (`filled` > 0)."""
    # an encoder-decoder cache holds only key/value layers (see reorder_inplace)
    for cache in (kv.self_attention_cache, kv.cross_attention_cache):
        for layer in cast("list[Any]", cache.layers):
            if filled > 0 and layer.is_initialized:
                layer.keys = layer.keys.index_select(0, beam_idx)
                layer.values = layer.values.index_select(0, beam_idx)


def reorder_inplace(kv: EncoderDecoderCache, beam_idx: torch.Tensor, filled: int) -> None:
    """Self-attention keys and values gathered and copied back into the same buffers (their
    filled prefix only), so captured graphs keep pointing at them. The cross-attention cache is
    left alone: beams of one input share one encoder output, so its rows are identical within
    each input's beams and a reorder (which only moves rows within an input) changes nothing."""
    # transformers types a cache's layers as a union that includes layers without keys and values;
    # an encoder-decoder self-attention cache holds only key/value layers
    for layer in cast("list[Any]", kv.self_attention_cache.layers):
        for buffer in (layer.keys, layer.values):
            filled_part = buffer[:, :, :filled]
            filled_part.copy_(filled_part.index_select(0, beam_idx))


REORDERS = {"index_select": reorder_index_select, "inplace": reorder_inplace}


# -- the token choice ---------------------------------------------------------------------------
def extend(sequences: torch.Tensor, tokens: torch.Tensor, beam_idx: torch.Tensor | None) -> torch.Tensor:
    """Append the chosen tokens; under beam search each row first takes its parent beam's history."""
    return torch.cat([sequences if beam_idx is None else sequences[beam_idx], tokens], dim=1)


def beam_totals(logits: torch.Tensor, scores: torch.Tensor | None, beams: int) -> torch.Tensor:
    """[batch, beams, vocab] what one step's choice ranks: each row's score plus each token's
    log-probability (beam search), or the logits themselves (greedy: scores None)."""
    if scores is None:
        return logits.float().view(-1, 1, logits.shape[-1])
    return torch.log_softmax(logits.float(), dim=-1).view(scores.shape[0], beams, -1) + scores.unsqueeze(-1)


def choose(logits: torch.Tensor, scores: torch.Tensor | None, offsets: torch.Tensor, beams: int):
    """(tokens [rows, 1], beam_idx [rows] or None, scores): greedy, or one beam-search step."""
    if scores is None:
        return logits.argmax(-1, keepdim=True), None, None
    vocab = logits.shape[-1]
    total = beam_totals(logits, scores, beams)
    scores, flat = total.view(offsets.shape[0], -1).topk(beams, dim=-1)
    beam_idx = (torch.div(flat, vocab, rounding_mode="floor") + offsets).view(-1)
    return (flat % vocab).view(-1, 1), beam_idx, scores


def initial_scores(batch: int, beams: int, device) -> torch.Tensor | None:
    """Beam scores before the first choice: only the first beam of each input is live (None: greedy)."""
    if beams == 1:
        return None
    scores = torch.full((batch, beams), float("-inf"), device=device)
    scores[:, 0] = 0.0
    return scores


# -- the loop, inside the timed region ----------------------------------------------------------
def decode_text(session, encoder: torch.Tensor, prepared, clock, beams: int) -> torch.Tensor:
    """Prefill, then gen_len - 1 steps; returns each input's best sequence [batch, 2 + gen_len]
    (greedy: its only one)."""
    encoder = encoder.repeat_interleave(beams, dim=0)
    logits = session.forward_step(prepared.prefix, encoder)
    clock.mark("prefill")
    scores = initial_scores(prepared.offsets.shape[0], beams, encoder.device)
    tokens, beam_idx, scores = choose(logits, scores, prepared.offsets, beams)
    sequences = extend(prepared.prefix, tokens, beam_idx)
    clock.mark("prefill_choice")
    for step in range(prepared.gen_len - 1):
        if beam_idx is not None:
            session.reorder(beam_idx, prepared.prefix.shape[1] + step)  # the cache holds the prefix and `step` tokens
        clock.mark("reorder")
        logits = session.decode_step(tokens, encoder)
        clock.mark("decode")
        tokens, beam_idx, scores = choose(logits, scores, prepared.offsets, beams)
        sequences = extend(sequences, tokens, beam_idx)
        clock.mark("decode_choice")
    session.steps += prepared.gen_len - 1
    if scores is None:
        return sequences
    best = scores.argmax(-1, keepdim=True) + prepared.offsets  # the best beam of each input
    return sequences[best.view(-1)]
