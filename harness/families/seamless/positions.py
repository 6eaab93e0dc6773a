"""The text decoder's sinusoidal positions, looked up without a host sync per step.

transformers' SeamlessM4Tv2SinusoidalPositionalEmbedding grows its table whenever a position would
run past its end: `... and max_pos > self.weights.size(0)` in its forward. With a static cache
`max_pos` holds the cache's device-side position counter, so that test reads a device value on the
host in every decoder step: a stall per token on CUDA, inside the step compile wraps (under compile
transformers skips the test). A session knows its longest sequence, so it grows the table once,
outside timing, to hold it (`fix_positions`), and the embedding then looks positions up the same
way without the test: the same positions, so the same outputs (tests/test_seamless.py compares the
two forwards; tests/test_sync_guard.py finds no host sync left in the step).
"""

from __future__ import annotations

import functools

import torch


@torch.no_grad()
def positions_without_growth(embedding, input_ids=None, inputs_embeds=None, cache_length=0) -> torch.Tensor:
    """The embedding's forward (transformers 5.x) without the growth test: [batch, length, dim]."""
    if input_ids is not None:
        batch, length = input_ids.size()
        ids = embedding.create_position_ids_from_input_ids(input_ids, embedding.padding_idx, cache_length)
    else:
        batch, length = inputs_embeds.size()[:-1]
        ids = embedding.create_position_ids_from_inputs_embeds(inputs_embeds, cache_length, embedding.padding_idx)
    table = embedding.weights
    return table.index_select(0, ids.to(table.device).view(-1)).view(batch, length, table.shape[-1]).detach()


def fix_positions(model, max_len: int) -> None:
    """Grow the text decoder's position table to hold `max_len` positions (as its forward would on
    reaching them), then look positions up without the per-step test. Idempotent: every session of
    a model installs the same lookup."""
    embedding = model.text_decoder.embed_positions
    needed = embedding.padding_idx + 1 + max_len  # the largest position id a max_len sequence reaches, plus one
    if needed > embedding.weights.size(0):
        embedding.make_weights(needed + embedding.offset, embedding.embedding_dim, embedding.padding_idx)
    embedding.forward = functools.partial(positions_without_growth, embedding)
