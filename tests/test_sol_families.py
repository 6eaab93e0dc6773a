"""Speed of light of SeamlessM4T (text decoder, vocoder) and HSTU (encoder): hand counts on small shapes, the
counts against the real modules' parameters and lengths, and tiny measured cases' sol_frac."""

import math
from types import SimpleNamespace

import pytest
import torch
from transformers import SeamlessM4Tv2Model

from harness.families import FAMILIES
from harness.families.hstu.model import HSTUBlock
from harness.families.hstu.sol import BlockShape, encoder_bytes, encoder_flops, hstu_sol
from harness.families.models import build_model, model_config
from harness.families.seamless.sol import TextDecoderShape, decode_bytes_per_step, prefill_bytes, prefill_flops, source_len
from harness.families.seamless.vocoder_cost import duration_convs, hifigan_convs, vocoder_bytes, vocoder_flops, vocoder_frames
from harness.measure.profile.sol import DecoderShape, SolInput, decoder_sol
from harness.measure.profile.sol import decode_bytes_per_step as llama_step_bytes
from harness.measure.workload import execute
from harness.spec.matrix import Case, expand
from harness.spec.workload import Lengths

SMALL_DECODER = TextDecoderShape(hidden=4, layers=2, heads=2, ffn=8, vocab=10)
# Per layer: self q, k, v, o 4 x 16, cross q, o 2 x 16, fc1 and fc2 4 x 8 each = 160 linear weights; biases 4 x 4
# + 2 x 4 + 8 + 4 = 36; norms 3 x 8 per layer + 8 for the final one = 56 in all; LM head 10 x 4 = 40.
STEP_LINEAR, STEP_SMALL, CROSS_KV = 2 * 160 + 40, 2 * 36 + 56, 2 * 2 * 16


def test_text_decoder_step_bytes_by_hand():
    """A step moves its weights, the rows' embeddings, every row's self K/V up to the position and the source's
    cross K/V once per input; a quantized stack's linear weights count at its bytes."""
    rows, inputs, source, context = 3, 1, 5, 4  # one input, three beams
    self_kv, cross_kv = 2 * 2 * 2 * 4 * rows * context, 2 * 2 * 2 * 4 * inputs * source  # bytes x k,v x layers x hidden
    assert (self_kv, cross_kv) == (384, 160)
    assert decode_bytes_per_step(SMALL_DECODER, 2, rows, inputs, source, context) == 2 * (360 + 128 + rows * 4) + 384 + 160 == 1544
    assert decode_bytes_per_step(SMALL_DECODER, 2, rows, inputs, source, context, linear_bytes=1) == 360 + 2 * (128 + 12) + 544


def test_text_decoder_prefill_flops_and_bytes_by_hand():
    """Prefill: two prefix positions per row, the source's K/V projections once per input, self and cross
    attention pairs, one LM-head row per row; and every weight once, the encoder output, the K/V written."""
    rows, inputs, source = 3, 1, 5
    matmuls = 2 * rows * 2 * (2 * 160)  # 2 FLOPs x rows x 2 positions x the layers' linear weights
    cross_projection = 2 * inputs * source * CROSS_KV
    attention = 2 * 2 * rows * 2 * 4 * (3 + 2 * source)  # QK and PV x rows x layers x hidden x (causal 3 + cross 10)
    lm_head = 2 * rows * 4 * 10
    assert (matmuls, cross_projection, attention, lm_head) == (3840, 640, 1248, 240)
    assert prefill_flops(SMALL_DECODER, rows, inputs, source) == 5968
    weights = 2 * (STEP_LINEAR + CROSS_KV) + 2 * (STEP_SMALL + 2 * 2 * 4)  # the cross k, v projections and biases too
    reads = 2 * inputs * source * 4 + 2 * rows * 2 * 4  # encoder output, prefix embedding rows
    written = 2 * 2 * 2 * 4 * (inputs * source + rows * 2)  # cross K/V per input, self K/V per row
    assert prefill_bytes(SMALL_DECODER, 2, rows, inputs, source) == weights + reads + written == 1576


def test_text_decoder_counts_every_decoder_parameter_once():
    """The step's weights, the cross k, v projections and the embedding table are the tiny model's text decoder
    and LM head, parameter for parameter."""
    config = model_config("seamless", "tiny")
    with torch.device("meta"):
        model = SeamlessM4Tv2Model(config)
    shape = TextDecoderShape.from_config(config)
    counted = shape.step_linear + shape.step_small + shape.cross_kv_linear + shape.layers * 2 * shape.hidden
    decoder = sum(p.numel() for p in model.text_decoder.parameters()) + model.lm_head.weight.numel()
    assert counted + shape.vocab * shape.hidden == decoder  # the embedding table: read only as looked-up rows


def test_source_length_is_the_encoder_output_length():
    """The speech encoder's output has the adapter's subsampled length of the frames; text keeps its length."""
    model = build_model("seamless", "tiny", "float32", "cpu", seed=0)
    config = model.config
    for frames in (64, 61, 9):
        features = torch.zeros((1, frames, config.feature_projection_input_dim))
        with torch.no_grad():
            encoded = model.speech_encoder(input_features=features).last_hidden_state
        assert source_len(config, frames, speech_in=True) == encoded.shape[1]
    assert source_len(config, 64, speech_in=True) == (64 + 2 * 4 - 8) // 8 + 1 == 9  # kernel 8, stride 8
    assert source_len(config, 16, speech_in=False) == 16


SMALL_VOCODER = SimpleNamespace(
    unit_embed_dim=2, variance_predictor_kernel_size=3, lang_embed_dim=1, spkr_embed_dim=1, upsample_initial_channel=4,
    upsample_rates=(2,), upsample_kernel_sizes=(4,), resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),),
)


def test_vocoder_flops_and_bytes_by_hand():
    """The vocoder: 2 FLOPs per multiply-add of each convolution (a transposed one per input sample), and its
    weights, looked-up embedding rows and each convolution's input and output, for 3 units and 5 frames."""
    duration = 2 * (2 * 2 * 2 * 3 * 3) + 2 * 2 * 1 * 1 * 3  # two 2->2 kernel-3 convolutions, the 2->1 projection, 3 units
    pre = 2 * 4 * 4 * 7 * 5  # (2 + 1 + 1) -> 4 channels, kernel 7, 5 frames
    upsample = 2 * 4 * 2 * 4 * 5  # 4 -> 2 channels, kernel 4, over its 5 input samples: 10 out
    resblock = 4 * (2 * 2 * 2 * 3 * 10)  # two dilations x two convolutions, 2 -> 2, kernel 3, 10 samples
    post = 2 * 2 * 1 * 7 * 10
    assert vocoder_flops(SMALL_VOCODER, 1, 3, 5) == duration + pre + upsample + resblock + post == 2836
    weights = 2 * (2 * 2 * 3 + 2) + (2 + 1) + (4 * 4 * 7 + 4) + (4 * 2 * 4 + 2) + 4 * (2 * 2 * 3 + 2) + (2 * 7 + 1)
    norms, lookups = 2 * 2 * 2, 3 * 2 + 1 + 1
    activations = 2 * (2 * 3 + 2 * 3) + (2 * 3 + 3) + (4 * 5 + 4 * 5) + (4 * 5 + 2 * 10) + 4 * (2 * 10 + 2 * 10) + (2 * 10 + 10)
    assert (weights, activations) == (252, 303)
    assert vocoder_bytes(SMALL_VOCODER, 4, 1, 3, 5) == 4 * (weights + norms + lookups + activations) == 2284
    assert vocoder_bytes(SMALL_VOCODER, 4, 2, 3, 5) == 4 * (weights + norms + 2 * (lookups + activations))  # rows share weights


def test_vocoder_counts_its_parameters_and_the_waveform_length():
    """The counted convolutions and norms are the tiny vocoder's parameters (its embedding tables aside), and
    the frames read back from a waveform give that waveform's length again."""
    config = model_config("seamless", "tiny")
    with torch.device("meta"):
        vocoder = SeamlessM4Tv2Model(config).vocoder
    tables = sum(p.numel() for name, p in vocoder.named_parameters() if name.endswith("embedding.weight"))
    counted = sum(conv.weights for conv in duration_convs(config, 1) + hifigan_convs(config, 1)) + 2 * 2 * config.unit_embed_dim
    assert counted == sum(p.numel() for p in vocoder.parameters()) - tables
    hop = math.prod(config.upsample_rates)
    assert vocoder_frames(config, 37 * hop) == 37 and hifigan_convs(config, 37)[-1].length_out == 37 * hop


def test_hstu_encoder_flops_and_bytes_by_hand():
    """Per block: the fused projection and the output projection per real token, the causal pairs of each
    history; bytes: the block's weights and each token's activations between its three steps."""
    shape = BlockShape(dim=4, blocks=2, heads=2, qk_dim=3, v_dim=2)
    lengths = [1, 3]  # 4 tokens, 1 + 6 causal pairs
    linear = 2 * 4 * (4 * 2 * (2 + 2 + 3 + 3) + 2 * 2 * 4)  # tokens x (D x u,v,q,k widths + H dv x D)
    attention = 2 * 2 * (3 + 2) * 7
    assert encoder_flops(shape, lengths) == 2 * (linear + attention) == 1816
    weights = 4 * 20 + 4 * 4 + 4  # W_uvqk, W_o, its bias
    per_token = (4 + 20) + (2 * 2 * 3 + 2 * 2 + 2 * 2) + (2 * 2 + 2 * 2 + 4 + 4)  # projection, attention, output
    assert per_token == 3 * 4 + 4 * 2 * 3 + 6 * 2 * 2 == 60
    assert encoder_bytes(shape, 2, lengths) == 2 * 2 * (weights + 4 * per_token) == 1360
    assert encoder_flops(shape, [3, 3]) > encoder_flops(shape, [1, 3])  # a padded batch's squares cost more


def test_hstu_block_weights_are_the_blocks_parameters():
    """The counted weights are an HSTU block's parameters but its two small bias tables."""
    config = model_config("hstu", "tiny")
    block = HSTUBlock(config)
    tables = block.position_bias.numel() + block.time_bias.numel()
    assert BlockShape.from_config(config).block_weights == sum(p.numel() for p in block.parameters()) - tables


def fake_input(runner, samples, linear_bytes=None):
    return SolInput(runner, samples, 4, linear_bytes, bandwidth_bytes_per_s=1e9, peak_flops_per_s=1e10)


def test_hstu_sol_counts_the_histories_the_runner_drew():
    """hstu_sol's fractions come from the real lengths of the batch the runner builds for each draw."""
    from harness.families.hstu.runner import RecommenderRunner

    case = Case("hstu", "rank", "tiny", "float32", 8, Lengths(32, 16, dist="longtail"), ("jagged",), items=20_000)
    model = build_model("hstu", "tiny", "float32", "cpu", seed=0)
    runner = RecommenderRunner(case, model, "cpu", seed=3)
    draws = [(30, 16), (35, 16)]
    samples = {"prompt_lens": [p for p, _ in draws], "gen_lens": [g for _, g in draws], "stages_s": {"encoder": [0.5, 0.25]}}
    found = hstu_sol(fake_input(runner, samples))
    shape = BlockShape.from_config(model.config)
    for index, draw in enumerate(draws):
        lengths = runner.inputs(draw).layouts["jagged"].length_list
        seconds = samples["stages_s"]["encoder"][index]
        assert found["encoder_compute"][index] == encoder_flops(shape, lengths) / (seconds * 1e10)
        assert found["encoder_bandwidth"][index] == encoder_bytes(shape, 4, lengths) / (seconds * 1e9)
        assert found["encoder"][index] == max(found["encoder_compute"][index], found["encoder_bandwidth"][index])


def test_decoder_sol_passes_a_quantized_stacks_weight_bytes():
    """The decoders' function counts a quantized stack's linear weights at its scheme's bytes."""
    config = model_config("llama", "tiny")
    runner = SimpleNamespace(model=SimpleNamespace(config=config), case=SimpleNamespace(batch_size=1))
    samples = {"prompt_lens": [8], "gen_lens": [3], "ttft_s": [0.1], "tpot_s": [0.01, 0.01]}
    shape = DecoderShape.from_config(config)
    for linear_bytes in (None, 1):
        decode = decoder_sol(fake_input(runner, samples, linear_bytes))["decode"]
        assert decode == [llama_step_bytes(shape, 4, 1, 8 + 3 / 2, linear_bytes) / (0.01 * 1e9)]
    assert decoder_sol(fake_input(runner, samples, 1))["decode"] < decoder_sol(fake_input(runner, samples))["decode"]


# family -> (case id fragment, the stages with a speed of light, those bounded by both peaks)
MEASURED = {
    "seamless": ("ss-tiny-b1-lognormal-p64-g16-beam4-fp32-sdpa",
                 {"text_decoder_prefill", "text_decoder_steps", "vocoder"}, {"text_decoder_prefill", "vocoder"}),
    "hstu": ("retrieve-tiny-b8-longtail-p32-g16-i20000-fp32-jagged", {"encoder"}, {"encoder"}),
}


@pytest.mark.parametrize("family", sorted(MEASURED))
def test_a_measured_tiny_case_records_its_speed_of_light(family, ctx_factory):
    """A measured tiny case's record has a positive, finite sol_frac for each stage of its family's that has
    one, named as the profile's stage, with the compute and bandwidth parts of the doubly bounded ones."""
    fragment, stages, bounded = MEASURED[family]
    cases, _ = expand(FAMILIES[family], "tiny", ("float32",), "cpu", only_stacks=("sdpa", "jagged"))
    (case,) = [case for case in cases if case.id.endswith(fragment)]
    ctx = ctx_factory(iterations=2, warmup=0)
    record = execute(case, ctx, measure=True).to_record()
    assert record["status"] == "ok", record["message"]
    parts = {f"{stage}_{bound}" for stage in bounded for bound in ("compute", "bandwidth")}
    assert set(record["sol_frac"]) == stages | parts and stages <= set(record["breakdown"])
    assert all(0 < frac < math.inf for frac in record["sol_frac"].values()), record["sol_frac"]
    assert record["device_peaks"] == ctx.peaks["float32"]


def test_a_phase_without_measurable_time_has_no_fraction():
    """A stage timed at zero seconds gives no fraction rather than a division by zero."""
    found = fake_input(None, {})
    assert found.roofline("encoder", 10.0, 10.0, 0.0) == {}
    assert found.roofline("encoder", 1e10, 1e9, 2.0) == {"encoder": 0.5, "encoder_compute": 0.5, "encoder_bandwidth": 0.5}


def test_seamless_sol_reads_rows_source_and_stages_of_each_iteration():
    """seamless_sol counts batch x beams rows, the speech encoder's output length as the source, the steps
    stage per step and the vocoder over the units and frames of each iteration."""
    from harness.families.seamless import TASKS
    from harness.families.seamless.sol import seamless_sol

    config = model_config("seamless", "tiny")
    runner = SimpleNamespace(model=SimpleNamespace(config=config), case=SimpleNamespace(batch_size=1), beams=4,
                             task=TASKS["ss"])
    samples = {"e2e_s": [2.0], "prompt_lens": [64], "gen_lens": [5],
               "stages_s": {"text_decoder_prefill_s": [0.5], "text_decoder_steps_s": [0.4], "vocoder_s": [0.25]},
               "generated_tokens": {"unit": [10], "waveform_samples": [12 * math.prod(config.upsample_rates)]}}
    found = seamless_sol(fake_input(runner, samples))
    shape, rows, source = TextDecoderShape.from_config(config), 4, 9  # 64 frames: 9 after the adapter
    assert found["text_decoder_prefill_compute"] == [prefill_flops(shape, rows, 1, source) / (0.5 * 1e10)]
    assert found["text_decoder_prefill_bandwidth"] == [prefill_bytes(shape, 4, rows, 1, source) / (0.5 * 1e9)]
    step = decode_bytes_per_step(shape, 4, rows, 1, source, 2 + 5 / 2)  # the prefix and half the generation
    assert found["text_decoder_steps"] == [step * 4 / (0.4 * 1e9)]
    assert found["vocoder_compute"] == [vocoder_flops(config, 1, 10, 12) / (0.25 * 1e10)]
    text_only = seamless_sol(fake_input(SimpleNamespace(**{**vars(runner), "task": TASKS["tt"]}), samples))
    assert set(text_only) == {"text_decoder_prefill", "text_decoder_prefill_compute", "text_decoder_prefill_bandwidth",
                              "text_decoder_steps"}
