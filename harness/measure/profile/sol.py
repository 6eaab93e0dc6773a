"""Speed of light: the bytes a decode step must move and the FLOPs a prefill must do, from a
decoder config (Llama shape), and how close a measured time comes to the device's peaks.

A family's figures come from one function (its spec's `sol` entry point): `SolInput` (its runner,
the timed samples, the dtype's and a quantized stack's bytes, this device's peaks) -> per phase,
one fraction per timed iteration. `decoder_sol` is the Llama-shaped decoders' (Llama, Chameleon);
SeamlessM4T's and HSTU's are in their family packages (`sol.py`), with their own counting rules.

Counted as the minimum the math needs, not what a given implementation does: decode reads
every weight once per step (batch shares it) plus the KV cache up to the current position;
embedding reads only its looked-up rows; prefill's LM head runs for the last position only;
causal attention counts the lower triangle. Norm weights are read but their FLOPs are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.analyse.stats import median

BYTES_PER_DTYPE = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class DecoderShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def from_config(cls, config) -> DecoderShape:
        return cls(
            hidden=config.hidden_size, layers=config.num_hidden_layers, heads=config.num_attention_heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
            ffn=config.intermediate_size, vocab=config.vocab_size,
        )


def layer_matmul_params(shape: DecoderShape) -> int:
    """Weights of one layer's matmuls: q, o (hidden²), k, v (hidden x kv width), gate, up, down."""
    kv_width = shape.kv_heads * shape.head_dim
    return 2 * shape.hidden * shape.hidden + 2 * shape.hidden * kv_width + 3 * shape.hidden * shape.ffn


def decode_bytes_per_step(
    shape: DecoderShape, dtype_bytes: int, batch: int, context_len: float, linear_bytes: float | None = None,
) -> float:
    """Bytes one decode step must move: matmul and norm weights, LM head, embedding rows, KV read.
    `linear_bytes`: bytes per weight of the linear layers (matmuls, LM head) where a quantized stack
    stores them narrower than the dtype (int8: 1, int4: 0.5); norms, embedding rows and KV stay at
    the dtype's. Without it an int8 stack's speed of light counts float weights and can exceed 1."""
    linear = shape.layers * layer_matmul_params(shape) + shape.vocab * shape.hidden
    norms = shape.layers * 2 * shape.hidden + shape.hidden
    embedding_rows = batch * shape.hidden
    kv_read = 2 * shape.layers * shape.kv_heads * shape.head_dim * context_len * batch
    per_linear = dtype_bytes if linear_bytes is None else linear_bytes
    return per_linear * linear + dtype_bytes * (norms + embedding_rows + kv_read)


def prefill_flops(shape: DecoderShape, batch: int, prompt_len: int) -> float:
    """FLOPs a prefill must do: 2 per multiply-add in the matmuls, causal QKᵀ and PV, one LM head row."""
    matmuls = 2 * batch * prompt_len * shape.layers * layer_matmul_params(shape)
    causal_pairs = prompt_len * (prompt_len + 1) / 2
    attention = 2 * 2 * batch * shape.layers * shape.heads * shape.head_dim * causal_pairs
    lm_head = 2 * batch * shape.hidden * shape.vocab
    return matmuls + attention + lm_head


def mean_decode_context(prompt_len: int, gen_len: int) -> float:
    """Mean positions attended over the decode steps: step i (1..gen_len-1) attends prompt_len + i."""
    return prompt_len + gen_len / 2


def sol_fracs(
    shape: DecoderShape, dtype_bytes: int, batch: int, prompt_len: int, gen_len: int,
    ttft_s: float, per_token_s: float | None, bandwidth_bytes_per_s: float, peak_flops_per_s: float,
    linear_bytes: float | None = None,
) -> dict[str, float]:
    """Fractions of the speed of light one iteration reached, per phase (1.0 = at the peak)."""
    out = {}
    if ttft_s > 0:
        out["prefill"] = prefill_flops(shape, batch, prompt_len) / (ttft_s * peak_flops_per_s)
    if gen_len > 1 and per_token_s:
        moved = decode_bytes_per_step(shape, dtype_bytes, batch, mean_decode_context(prompt_len, gen_len), linear_bytes)
        out["decode"] = moved / (per_token_s * bandwidth_bytes_per_s)
    return out


@dataclass(frozen=True)
class SolInput:
    """What a family's speed-of-light function reads: the case's runner (its case, model, seed and
    what it knows of its stages), the timed samples, the bytes per element of the case's dtype,
    the bytes per linear weight of a quantized stack (None: the dtype's) and this device's peaks."""

    runner: Any  # each family's own runner class
    samples: dict
    dtype_bytes: int
    linear_bytes: float | None
    bandwidth_bytes_per_s: float
    peak_flops_per_s: float

    def roofline(self, phase: str, flops: float, moved_bytes: float, seconds: float) -> dict[str, float]:
        """A phase bounded by both the peak and the bandwidth: `<phase>_compute` (FLOPs ÷ (seconds ×
        peak)), `<phase>_bandwidth` (bytes ÷ (seconds × bandwidth)) and `<phase>`, the larger: the
        ideal time is the longer of the two, so that one says how close the phase came to it. A phase
        that took no measurable time has none ({})."""
        if seconds <= 0:
            return {}
        compute = flops / (seconds * self.peak_flops_per_s)
        bandwidth = moved_bytes / (seconds * self.bandwidth_bytes_per_s)
        return {phase: max(compute, bandwidth), f"{phase}_compute": compute, f"{phase}_bandwidth": bandwidth}


def append_fracs(per_iteration: dict[str, list[float]], found: dict[str, float]) -> None:
    """Add one iteration's fractions to the per-phase lists."""
    for phase, frac in found.items():
        per_iteration.setdefault(phase, []).append(frac)


@dataclass(frozen=True)
class SolView:
    """What one timed iteration's speed-of-light fractions compare: the decoder's rows and prompt
    as it sees them, the generated tokens, the measured prefill and per-token seconds, and the
    phase the decode fraction is reported under."""

    rows: int
    prompt_len: int
    gen_len: int
    prefill_s: float
    per_token_s: float | None
    decode_phase: str = "decode"


def decoder_views(samples: dict, batch: int) -> list[tuple[SolView, dict[str, float]]]:
    """Per timed iteration, the plain decoder loop's view (the batch, the prompt, TTFT, the median
    of its token intervals: one stalled step does not set it), with that iteration's stages."""
    stages = samples.get("stages_s", {})
    views = []
    offset = 0
    for index, (p, g, ttft_s) in enumerate(zip(samples["prompt_lens"], samples["gen_lens"], samples["ttft_s"], strict=True)):
        intervals = samples["tpot_s"][offset : offset + g - 1]
        offset += g - 1
        view = SolView(batch, p, g, ttft_s, median(intervals) if intervals else None)
        views.append((view, {stage: seconds[index] for stage, seconds in stages.items()}))
    return views


def decoder_sol(found: SolInput) -> dict[str, list[float]]:
    """A Llama-shaped decoder's prefill and decode fractions per timed iteration. A runner whose
    decoder is one stage of several (Chameleon) says what its decoder saw (`sol_view`)."""
    shape = DecoderShape.from_config(found.runner.model.config)
    adapt = getattr(found.runner, "sol_view", lambda view, stages_s: view)
    per_iteration: dict[str, list[float]] = {}
    for plain, stages_s in decoder_views(found.samples, found.runner.case.batch_size):
        view = adapt(plain, stages_s)
        fracs = sol_fracs(
            shape, found.dtype_bytes, view.rows, view.prompt_len, view.gen_len, view.prefill_s, view.per_token_s,
            found.bandwidth_bytes_per_s, found.peak_flops_per_s, found.linear_bytes,
        )
        append_fracs(per_iteration, {view.decode_phase if phase == "decode" else phase: frac for phase, frac in fracs.items()})
    return per_iteration
