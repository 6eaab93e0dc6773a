"""HSTU's speed of light: the FLOPs and bytes its encoder (the HSTU blocks) must do and move for one
batch of histories, against the `encoder` stage the runner times (harness/families/hstu/runner.py).

Per block (harness/families/hstu/model.py), for D = embedding_dim, H heads, dqk = attention_dim,
dv = linear_dim and a batch of histories of lengths n_1..n_B (T = their sum):
- the fused projection (LayerNorm, x @ W_uvqk, SiLU): 2 x D x H(2 dv + 2 dqk) FLOPs per token;
- pointwise attention, SiLU(q·kᵀ + bias) / N under the causal mask: QKᵀ (2 H dqk) and the weighted
  sum over v (2 H dv) per query-key pair, and a history of n has n(n + 1)/2 pairs (the lower
  triangle, the diagonal included);
- the output (LayerNorm(attn) ⊙ u, then W_o with its bias, plus the residual): 2 x H dv x D per token.
Norms, SiLU, the relative bias and the products ⊙ are pointwise or lookups: no FLOPs counted.
Bytes: each block's weights once (W_uvqk, W_o and its bias; the two small bias tables and the
timestamps are left out: a few bytes per token against hundreds), and per token what the block's
three steps must read and write between them when each is one fused kernel: the projection reads
x (D) and writes u, v, q, k; the attention reads q, k, v and writes its output (H dv), its n x n
scores never leaving the chip; the output step reads that, u and x, and writes the new x (D):
3 D + 4 H dqk + 6 H dv values a token.

The minimum counts the real tokens only, for every layout: the padded and fixed layouts compute
batch x longest tokens and whole squares, which is their cost and so lowers their fraction; the
jagged layout computes what the minimum counts. Which of the two bounds applies depends on the
shape and the lengths (in bfloat16 about 25 FLOPs a byte for paper-ml1m, 100 to 140 for paper:
either side of a GPU's ridge point), so both are reported: `encoder_compute` (FLOPs ÷ (time ×
peak)), `encoder_bandwidth` (bytes ÷ (time × bandwidth)) and `encoder`, the larger of the two
(SolInput.roofline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.families.hstu.runner import history_lengths
from harness.measure.profile.sol import SolInput, append_fracs


@dataclass(frozen=True)
class BlockShape:
    dim: int
    blocks: int
    heads: int
    qk_dim: int
    v_dim: int

    @classmethod
    def from_config(cls, config) -> BlockShape:
        return cls(config.embedding_dim, config.num_blocks, config.num_heads, config.attention_dim, config.linear_dim)

    @property
    def uvqk_width(self) -> int:
        return self.heads * (2 * self.v_dim + 2 * self.qk_dim)

    @property
    def block_weights(self) -> int:
        """W_uvqk, W_o and W_o's bias."""
        return self.dim * self.uvqk_width + self.heads * self.v_dim * self.dim + self.dim

    @property
    def token_values(self) -> int:
        """Values a token's activations move through one block (read and written between its steps)."""
        return 3 * self.dim + 4 * self.heads * self.qk_dim + 6 * self.heads * self.v_dim


def causal_pairs(lengths: Sequence[int]) -> int:
    """Query-key pairs of causal attention over each history, the diagonal included."""
    return sum(n * (n + 1) // 2 for n in lengths)


def encoder_flops(shape: BlockShape, lengths: Sequence[int]) -> int:
    """FLOPs of every block over the real tokens of histories of these lengths."""
    tokens = sum(lengths)
    linear = 2 * tokens * (shape.dim * shape.uvqk_width + shape.heads * shape.v_dim * shape.dim)
    attention = 2 * shape.heads * (shape.qk_dim + shape.v_dim) * causal_pairs(lengths)
    return shape.blocks * (linear + attention)


def encoder_bytes(shape: BlockShape, dtype_bytes: int, lengths: Sequence[int]) -> int:
    """Bytes every block must move: its weights once and each real token's activations."""
    return dtype_bytes * shape.blocks * (shape.block_weights + sum(lengths) * shape.token_values)


def hstu_sol(found: SolInput) -> dict[str, list[float]]:
    """Per timed iteration: encoder, encoder_compute and encoder_bandwidth, over the histories the
    iteration drew (the runner's own seeded lengths for its draw)."""
    runner, samples = found.runner, found.samples
    shape = BlockShape.from_config(runner.model.config)
    per_iteration: dict[str, list[float]] = {}
    draws = zip(samples["prompt_lens"], samples["gen_lens"], samples["stages_s"]["encoder"], strict=True)
    for prompt_len, gen_len, encoder_s in draws:
        lengths = history_lengths(runner.case.lengths, runner.case.batch_size, (prompt_len, gen_len), runner.seed,
                                  runner.model.config.max_seq_len)
        flops, moved = encoder_flops(shape, lengths), encoder_bytes(shape, found.dtype_bytes, lengths)
        append_fracs(per_iteration, found.roofline("encoder", flops, moved, encoder_s))
    return per_iteration
