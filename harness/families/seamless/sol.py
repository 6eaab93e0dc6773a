"""SeamlessM4T v2's speed of light: its text decoder's prefill and steps, and its vocoder, from the
model config, against the stages the runner times (harness/families/seamless/runner.py).

The text decoder (NLLB style, transformers' SeamlessM4Tv2Decoder): per layer self-attention (q, k,
v, o), cross-attention (q, k, v, o) over the encoder's output, a two-matrix feed-forward (fc1, fc2),
every linear with a bias, three layer norms (weight and bias); a final norm; the LM head, no bias.
Counted as the minimum the math needs, by sol.py's rules (weights once per forward, batch rows
share them; embedding rows only as looked up; the LM head on the last position only; causal
attention's lower triangle; norm and bias FLOPs ignored, their bytes counted), and:
- rows: batch x beams; the source length S is the encoder's output: text tokens as they are,
  speech frames after the adapter's strided convolutions (`source_len`).
- cross-attention K/V: computed once in prefill from the encoder output, read by every step. The
  beams of one input share one encoder output, so the minimum computes and reads them once per
  input (batch x S), not per beam (the runner's cache holds a copy per beam: that is its cost).
- `text_decoder_prefill` (the forward over [decoder start, target language] and the first
  choice): FLOPs of the two positions' matmuls, attention over the prefix and the source, the
  cross K/V projections of the source, one LM-head row per beam; bytes of every decoder weight
  (the cross k, v projections included), the encoder output read, the cross and self K/V written.
  Both bounds are reported (SolInput.roofline): the prefix is two positions, so weights' bytes
  and the source's K/V projection FLOPs can each be the larger.
- `text_decoder_steps` (per step: token choice, one decoder forward; the reorder is its own
  stage): bytes of the step's weights (not the cross k, v projections: their output is cached),
  the embedding rows, every row's self-attention K/V up to its position and the cross K/V once per
  input. A step's FLOPs (2 x rows per weight) stay far under any device's peak per byte: bandwidth
  is the bound, as in Llama's decode.
- `vocoder` (speech out): its FLOPs and bytes over the units and frames it ran
  (harness/families/seamless/vocoder_cost.py), both reported.
- not counted: the encoders, text-to-unit and the KV reorder (whose minimum is no copy at all).
A quantized stack (none yet here) would count the decoder's linear weights at its scheme's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.families.seamless.runner import PREFIX_LEN
from harness.families.seamless.vocoder_cost import vocoder_bytes, vocoder_flops, vocoder_frames
from harness.measure.profile.sol import SolInput, append_fracs, mean_decode_context


@dataclass(frozen=True)
class TextDecoderShape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> TextDecoderShape:
        return cls(config.hidden_size, config.decoder_layers, config.decoder_attention_heads,
                   config.decoder_ffn_dim, config.vocab_size)

    @property
    def step_linear(self) -> int:
        """Linear weights a step reads: self q, k, v, o, cross q, o, fc1, fc2 per layer; the LM head."""
        return self.layers * (6 * self.hidden**2 + 2 * self.hidden * self.ffn) + self.vocab * self.hidden

    @property
    def cross_kv_linear(self) -> int:
        """The cross-attention k and v projections' weights (prefill only: their output is cached)."""
        return self.layers * 2 * self.hidden**2

    @property
    def step_small(self) -> int:
        """Biases of the step's linears (self q, k, v, o, cross q, o, fc2: hidden each; fc1: ffn) and
        the layer norms (three per layer and the final one, weight and bias each)."""
        return self.layers * (7 * self.hidden + self.ffn) + (3 * self.layers + 1) * 2 * self.hidden

    def kv_bytes(self, dtype_bytes: int, positions: float) -> float:
        """Keys and values of every layer over `positions` rows x positions."""
        return dtype_bytes * 2 * self.layers * self.hidden * positions


def source_len(config, prompt_len: int, speech_in: bool) -> int:
    """The encoder output's length: text tokens as given; speech frames after each adapter layer's
    strided convolution (transformers' _compute_sub_sample_lengths_from_attention_mask)."""
    if not speech_in or not config.add_adapter:
        return prompt_len
    length, kernel, stride = prompt_len, config.adaptor_kernel_size, config.adaptor_stride
    for _ in range(config.num_adapter_layers):
        length = (length + 2 * (kernel // 2) - kernel) // stride + 1
    return length


def decode_bytes_per_step(shape: TextDecoderShape, dtype_bytes: int, rows: int, inputs: int, source: int,
                          context: float, linear_bytes: float | None = None) -> float:
    """Bytes one decoder step must move: its weights, embedding rows, self K/V over `context`
    positions per row, cross K/V over the source once per input."""
    per_linear = dtype_bytes if linear_bytes is None else linear_bytes
    weights = per_linear * shape.step_linear + dtype_bytes * (shape.step_small + rows * shape.hidden)
    return weights + shape.kv_bytes(dtype_bytes, rows * context) + shape.kv_bytes(dtype_bytes, inputs * source)


def prefill_flops(shape: TextDecoderShape, rows: int, inputs: int, source: int) -> float:
    """FLOPs of the prefill: prefix matmuls, source K/V projections, causal self and cross
    attention (QKᵀ and PV), one LM-head row per beam."""
    prefix = PREFIX_LEN
    matmuls = 2 * rows * prefix * (shape.step_linear - shape.vocab * shape.hidden)
    cross_kv = 2 * inputs * source * shape.cross_kv_linear
    pairs = prefix * (prefix + 1) / 2 + prefix * source
    attention = 2 * 2 * rows * shape.layers * shape.hidden * pairs
    return matmuls + cross_kv + attention + 2 * rows * shape.hidden * shape.vocab


def prefill_bytes(shape: TextDecoderShape, dtype_bytes: int, rows: int, inputs: int, source: int,
                  linear_bytes: float | None = None) -> float:
    """Bytes of the prefill: every decoder weight, the prefix's embedding rows, the encoder output
    read, the cross K/V written once per input and the prefix's self K/V per row."""
    per_linear = dtype_bytes if linear_bytes is None else linear_bytes
    linear = per_linear * (shape.step_linear + shape.cross_kv_linear)
    small = dtype_bytes * (shape.step_small + shape.layers * 2 * shape.hidden)  # and the cross k, v biases
    encoder = dtype_bytes * inputs * source * shape.hidden + dtype_bytes * rows * PREFIX_LEN * shape.hidden
    return linear + small + encoder + shape.kv_bytes(dtype_bytes, inputs * source + rows * PREFIX_LEN)


def iteration_fracs(found: SolInput, shape: TextDecoderShape, index: int) -> dict[str, float]:
    """One timed iteration's fractions, per stage it has."""
    runner, samples = found.runner, found.samples
    config, batch = runner.model.config, runner.case.batch_size
    rows, gen_len = batch * runner.beams, samples["gen_lens"][index]
    source = source_len(config, samples["prompt_lens"][index], runner.task.speech_in)
    stages_s = {stage: seconds[index] for stage, seconds in samples["stages_s"].items()}
    out = found.roofline(
        "text_decoder_prefill", prefill_flops(shape, rows, batch, source),
        prefill_bytes(shape, found.dtype_bytes, rows, batch, source, found.linear_bytes), stages_s["text_decoder_prefill_s"],
    )
    if gen_len > 1 and stages_s["text_decoder_steps_s"] > 0:
        context = mean_decode_context(PREFIX_LEN, gen_len)
        step = decode_bytes_per_step(shape, found.dtype_bytes, rows, batch, source, context, found.linear_bytes)
        out["text_decoder_steps"] = step * (gen_len - 1) / (stages_s["text_decoder_steps_s"] * found.bandwidth_bytes_per_s)
    if runner.task.speech_out:
        generated = samples["generated_tokens"]
        units, frames = generated["unit"][index], vocoder_frames(config, generated["waveform_samples"][index])
        flops = vocoder_flops(config, batch, units, frames)
        out |= found.roofline("vocoder", flops, vocoder_bytes(config, found.dtype_bytes, batch, units, frames), stages_s["vocoder_s"])
    return out


def seamless_sol(found: SolInput) -> dict[str, list[float]]:
    """Per timed iteration: text_decoder_prefill (and its _compute, _bandwidth), text_decoder_steps,
    and with speech out vocoder (and its _compute, _bandwidth)."""
    shape = TextDecoderShape.from_config(found.runner.model.config)
    per_iteration: dict[str, list[float]] = {}
    for index in range(len(found.samples["e2e_s"])):
        append_fracs(per_iteration, iteration_fracs(found, shape, index))
    return per_iteration
