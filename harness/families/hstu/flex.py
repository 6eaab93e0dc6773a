"""HSTU's pointwise attention through torch's flex_attention (compiled; runs on CPU and CUDA).

flex_attention always normalises with a softmax: out = Σ exp(s')·v / Σ exp(s'). HSTU wants
Σ SiLU(s)·v / n. With s' = log SiLU(s) the exponent gives SiLU(s) back, but only where it is
positive, so the sum is split into a positive and a negative pass. The softmax denominator is
cancelled without `return_lse` (not supported by the CPU compile path in torch 2.13) by one
extra "sink" key that every query sees with score 0 and value (0, ..., 0, 1): the last output
column is then 1 / Σ exp(s'), and dividing by it leaves the plain sum.
The bias (position table + log-bucketed time deltas) is computed inside the score function, so
no [batch, n, n] bias is materialised; the causal block mask skips blocks above the diagonal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from harness.families.hstu.model import LOG_BUCKET_DIVISOR, HSTUBlock

NEG_INF = float("-inf")


class FlexAttend:
    """An `Attend` for HSTU.encode_padded; counts its calls as evidence that it ran."""

    def __init__(self, compiled: bool = True) -> None:
        self._flex = torch.compile(flex_attention) if compiled else flex_attention
        self.compiled = compiled
        self.calls = 0
        self._masks: dict = {}

    def _mask(self, n: int, device):
        key = (n, str(device))
        if key not in self._masks:  # one per length; the mask does not depend on the batch's values
            sink = n
            self._masks[key] = create_block_mask(
                lambda b, h, qi, ki: (qi >= ki) | (ki == sink), B=None, H=None, Q_LEN=n, KV_LEN=n + 1, device=device
            )
        return self._masks[key]

    def __call__(self, block: HSTUBlock, q, k, v, timestamps, positions=None, buckets=None) -> torch.Tensor:
        self.calls += 1
        n, dv = q.shape[1], v.shape[-1]
        config = block.config
        position_bias, time_bias = block.position_bias, block.time_bias

        def biased(score, b, h, qi, ki):
            key = torch.clamp(ki, max=n - 1)  # the sink's index is n: keep the lookups in range
            delta = torch.clamp(torch.abs(timestamps[b, qi] - timestamps[b, key]), min=1).float()
            bucket = torch.clamp((torch.log(delta) / LOG_BUCKET_DIVISOR).long(), 0, config.num_time_buckets)
            return score + position_bias[config.max_seq_len - 1 + key - qi] + time_bias[bucket]

        def positive(score, b, h, qi, ki):
            s = biased(score, b, h, qi, ki)
            return torch.where(ki == n, 0.0, torch.where(s > 0, torch.log(F.silu(s)), NEG_INF))

        def negative(score, b, h, qi, ki):
            s = biased(score, b, h, qi, ki)
            return torch.where(ki == n, 0.0, torch.where(s < 0, torch.log(-F.silu(s)), NEG_INF))

        query = q.transpose(1, 2)
        key = F.pad(k.transpose(1, 2), (0, 0, 0, 1))  # sink key: zeros
        value = F.pad(v.transpose(1, 2), (0, 1, 0, 1))
        value[:, :, n, dv] = 1.0  # the sink's value picks out 1 / denominator
        mask = self._mask(n, q.device)
        parts = []
        for score_mod, sign in ((positive, 1.0), (negative, -1.0)):
            out = self._flex(query, key, value, score_mod=score_mod, block_mask=mask, scale=1.0)
            parts.append(sign * out[..., :dv] / out[..., dv:])
        total = parts[0] + parts[1]
        return (total / config.max_seq_len).transpose(1, 2)
