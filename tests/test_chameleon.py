"""Chameleon: builder, vocabulary, VQ token counts, CFG and masks, stages, levers (CPU, tiny)."""

import math

import pytest
import torch

from harness.families import FAMILIES
from harness.families.base import CHOICE_MARKS, timings
from harness.families.chameleon.model import PRESETS, image_token_name, preset_image_tokens, random, vocab_layout
from harness.families.chameleon.runner import (
    REFERENCE_GUIDANCE,
    ChameleonRunner,
    Guidance,
    allow_only,
    cfg_combine,
    stage_names,
)
from harness.families.models import build_model, count_parameters_on_meta, model_config
from harness.levers import LEVERS
from harness.levers.plan import plan_for
from harness.measure.case import RunContext
from harness.measure.clock import Marks
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.spec.matrix import OPT_IN_REASON, Case, expand
from harness.spec.workload import Lengths
from tests.test_prefill import lm_head_shapes

# Reference: the Chameleon paper (arXiv 2405.09818) names its models 7B and 34B; those rounded
# names are the only published sizes, so the tolerance is 2% of them. Counts include the VQ
# tokenizer (about 29M parameters).
PUBLISHED = {"paper-7b": 7e9, "paper": 34e9}
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def model():
    return build_model("chameleon", "tiny", "float32", "cpu", seed=0)


def case_for(task, prompt_len, gen_len, stack=("sdpa",), batch=1):
    return Case("chameleon", task, "tiny", "float32", batch, Lengths(prompt_len, gen_len), stack)


def run_once(model, case, guidance=REFERENCE_GUIDANCE):
    runner = ChameleonRunner(case, model, "cpu", seed=0, guidance=guidance)
    session = runner.session(plan_for(case.stack))
    return runner, session, runner.run(session, runner.inputs((case.lengths.prompt_len, case.lengths.gen_len)))


# -- classifier-free guidance and the image-vocabulary mask, against hand-computed values ------------
def test_cfg_combination_by_hand():
    """Classifier-free guidance combines the full-, image- and unconditioned rows as the reference does."""
    # rows: [full-conditioned x2, image-conditioned x2, unconditioned x2] (the reference's order)
    logits = torch.tensor([
        [2.0, 0.0, 1.0], [0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0], [1.0, 0.0, 0.0],
        [0.0, 2.0, 1.0], [0.0, 0.0, 2.0],
    ])
    got = cfg_combine(logits, Guidance(text_scale=3.0, image_scale=1.2))
    # uncond + 1.2 * (image - uncond) + 3.0 * (full - image), row 0: [0,2,1] + 1.2*[1,-1,0] + 3*[1,-1,0]
    expected = torch.tensor([[4.2, -2.2, 1.0], [-1.8, 0.0, -0.4]])
    assert torch.allclose(got, expected)


def test_image_mask_keeps_only_image_tokens_by_hand():
    """The image mask sets every non-image token's logit to minus infinity and leaves the image tokens' logits
    as they are."""
    logits = torch.tensor([[9.0, 1.0, 3.0, 4.0]])
    allowed = torch.tensor([False, False, True, True])
    masked = allow_only(logits, allowed)
    assert masked[0, :2].tolist() == [-math.inf, -math.inf] and masked[0, 2:].tolist() == [3.0, 4.0]
    assert masked.argmax(-1).item() == 3


def test_image_selection_applies_guidance_then_the_mask(model):
    """Image-token selection applies guidance and then the image mask, and feeds the chosen token to every
    stream."""
    runner = ChameleonRunner(case_for("ti", 4, 2), model, "cpu", seed=0)
    vocab = runner.vocab
    text_id, image_a, image_b = vocab.text_ids[0].item(), vocab.image_ids[0].item(), vocab.image_ids[1].item()
    logits = torch.zeros((3, vocab.vocab_size))
    logits[:, text_id] = 100.0  # best raw token everywhere, but not an image token
    logits[0, image_a], logits[1, image_a], logits[2, image_a] = 5.0, 4.0, 0.0  # guided: 4.8 + 3 = 7.8
    logits[0, image_b], logits[1, image_b], logits[2, image_b] = 6.0, 6.0, 6.0  # guided: 6.0
    token, fed = runner.select_image(logits)
    assert token.tolist() == [[image_a]]  # the full-conditioned stream alone would pick image_b
    assert fed.tolist() == [[image_a]] * 3  # every stream continues with the chosen token


def test_text_selection_never_picks_an_image_token(model):
    """Text selection never picks an image token, however high its logit."""
    runner = ChameleonRunner(case_for("tt", 4, 2), model, "cpu", seed=0)
    logits = torch.zeros((1, runner.vocab.vocab_size))
    logits[0, runner.vocab.image_ids[5]] = 50.0
    logits[0, runner.vocab.text_ids[7]] = 1.0
    token, _ = runner.select_text(logits)
    assert token.item() == runner.vocab.text_ids[7].item()


# -- builder, vocabulary, token counts -------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_paper_presets_match_published_sizes_on_meta(preset):
    """The paper presets' parameter counts, taken on the meta device, lie within 2% of the published 7B and
    34B."""
    count = count_parameters_on_meta("chameleon", preset)
    assert abs(count - PUBLISHED[preset]) / PUBLISHED[preset] < TOLERANCE, count


@pytest.mark.parametrize("preset", ["paper-7b", "paper"])
def test_paper_vq_tokenizer_gives_1024_tokens_per_512px_image(preset):
    """The paper presets' VQ tokenizer turns each 512-pixel image into 1024 tokens."""
    with torch.device("meta"):
        vq = random(model_config("chameleon", preset)).model.vqmodel
        codes = vq.encode(torch.empty((2, 3, 512, 512))).image_tokens
    assert codes.numel() == 2 * 1024 == 2 * preset_image_tokens(preset)


def test_tiny_vq_token_count_matches_its_encoder(model):
    """The tiny preset's VQ encoder gives the declared image-token count: a 16x16 grid of a 32-pixel image."""
    codes = model.model.vqmodel.encode(torch.zeros((1, 3, 32, 32))).image_tokens
    assert codes.numel() == preset_image_tokens("tiny") == 256


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_ti_workloads_generate_one_whole_image(preset):
    """Every preset's text-to-image workload generates exactly one whole image of tokens."""
    (ti,) = [w for w in FAMILIES["chameleon"].workloads[preset] if "ti" in w.tasks]
    assert ti.lengths.gen_len == preset_image_tokens(preset)
    assert ti.lengths.gen_len == (256 if preset == "tiny" else 1024)  # the paper's count; tiny's a quarter


def test_a_workloads_opt_in_stack_runs_only_when_named():
    """A workload's opt-in stack is dropped with the opt-in reason unless it is named, while other workloads
    keep that stack."""
    spec = FAMILIES["chameleon"]
    cases, dropped = expand(spec, "tiny", ("float32",), "cpu")
    ti_int8dq = "chameleon-ti-tiny-b1-p16-g256-fp32-sdpa+int8dq"
    assert {d.case_id: d.reason for d in dropped}[ti_int8dq] == OPT_IN_REASON
    assert "chameleon-tt-tiny-b1-p32-g32-fp32-sdpa+int8dq" in {case.id for case in cases}  # other workloads keep it
    named, _ = expand(spec, "tiny", ("float32",), "cpu", only_stacks=("sdpa+int8dq",))
    assert ti_int8dq in {case.id for case in named}


def test_vocabulary_map_agrees_with_transformers_parsing(model):
    """The vocabulary layout agrees with transformers' own mapping, and image, text and special tokens never
    overlap."""
    layout = vocab_layout(model.config)
    hf = model.model.vocabulary_mapping
    assert image_token_name(120) == "IMGIMGBCAZ"
    assert layout.image_ids.tolist() == [hf.img2bpe[code] for code in range(len(layout.image_ids))]
    assert hf.image_token_id == model.config.image_token_id is not None
    image_ids, text_ids = set(layout.image_ids.tolist()), set(layout.text_ids.tolist())
    assert not image_ids & text_ids
    assert not {layout.bos, layout.pad, layout.boi, layout.eoi, hf.image_token_id} & text_ids


def test_random_weights_are_seeded():
    """Random weights, the VQ tokenizer's included, depend only on the seed."""
    a, b, c = (build_model("chameleon", "tiny", "float32", "cpu", seed=s) for s in (3, 3, 4))
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    ea, eb = (m.model.vqmodel.quantize.embedding.weight for m in (a, b))
    assert torch.equal(ea, eb)


def test_checkpoint_saved_here_loads_and_captions_the_same(tmp_path):
    """A checkpoint saved from random weights loads through checkpoint_dir and captions exactly as the random
    model does."""
    build_model("chameleon", "tiny", "float32", "cpu", seed=7).save_pretrained(tmp_path)
    case = case_for("it", 4, 3, stack=("eager",))
    contexts = [RunContext(RunOptions(seed=7, checkpoint_dir=folder), "cpu") for folder in ("", str(tmp_path))]
    for ctx in contexts:
        assert execute(case, ctx, measure=False).status == "ok"
    random_tokens, checkpoint_tokens = (list(ctx.references.values())[0] for ctx in contexts)
    assert torch.equal(random_tokens, checkpoint_tokens)


# -- the runner: sequences, stages, counts, levers -------------------------------------------------
def test_image_is_tokenized_and_spliced_into_the_prompt(model):
    """For image-to-text the image's tokens sit between begin- and end-of-image after BOS, and only text
    tokens follow."""
    runner = ChameleonRunner(case_for("it", 5, 2), model, "cpu", seed=0)
    prepared = runner.inputs((5, 2))
    ids = runner.encode(prepared)
    layout = runner.vocab
    image = preset_image_tokens("tiny")
    assert ids.shape == (1, 1 + 1 + image + 1 + 4)
    assert ids[0, :2].tolist() == [layout.bos, layout.boi] and ids[0, 2 + image].item() == layout.eoi
    assert torch.isin(ids[0, 2 : 2 + image], layout.image_ids).all()
    assert not torch.isin(ids[0, 3 + image :], layout.image_ids).any()


def test_ti_streams_share_one_length_and_end_in_begin_of_image(model):
    """Text-to-image builds three streams per prompt of one length, all ending in begin-of-image, with only
    the full-conditioned ones holding the prompt."""
    runner = ChameleonRunner(case_for("ti", 6, 2, batch=2), model, "cpu", seed=0)
    streams = runner.inputs((6, 2)).head
    layout = runner.vocab
    assert streams.shape == (6, 7)
    assert (streams[:, -1] == layout.boi).all()
    assert streams[:2, 0].tolist() == [layout.bos] * 2  # full-conditioned: the prompt itself
    assert (streams[2:, :-2] == layout.pad).all() and (streams[2:, -2] == layout.bos).all()


def expect_stages_partition(output, keys):
    stages, e2e = output.stages_s, output.metrics["e2e_s"]
    assert set(stages) == keys
    assert all(seconds > 0 for seconds in stages.values())
    assert sum(stages.values()) == pytest.approx(e2e, rel=1e-9)


@pytest.mark.parametrize(
    "task, keys",
    [
        ("it", {"vq_encode_s", "prefill_s", "text_decode_s"}),
        ("tt", {"prefill_s", "text_decode_s"}),
        ("ti", {"prefill_s", "image_decode_s", "cfg_s"}),
    ],
)
def test_stages_are_present_and_add_up_to_end_to_end(model, task, keys):
    """Each task reports its own stages, all positive and adding up to end-to-end time, and counts its
    generated tokens by kind."""
    _, _, output = run_once(model, case_for(task, 6, 5))
    expect_stages_partition(output, keys)
    if task == "it":
        assert output.metrics["ttft_s"] > output.stages_s["vq_encode_s"]  # time to first token includes the image
    kind = "image" if task == "ti" else "text"
    assert output.generated_tokens == {kind: 5} and output.value.shape == (1, 5)


def test_stage_split_by_hand():
    """Stage times are split from the generation's marks, with guidance counted apart from image decoding when
    it is on."""
    names = ("encode", "prefill", "prefill_choice", "decode", "decode_choice", "decode", "decode_choice")
    marks = Marks(names, (1.0, 2.5, 3.0, 5.0, 5.5, 7.0, 8.0))
    _, stages = timings(marks, CHOICE_MARKS, stage_names(image_in=True, image_out=True, guided=True))
    assert stages == {
        "vq_encode_s": 1.0, "prefill_s": 1.5, "image_decode_s": 3.5, "cfg_s": 0.5 + 0.5 + 1.0,
    }
    _, stages = timings(marks, CHOICE_MARKS, stage_names(image_in=True, image_out=False, guided=False))
    assert stages == {
        "vq_encode_s": 1.0, "prefill_s": 2.0, "text_decode_s": 5.0,
    }


def test_ti_generates_image_tokens_only_and_one_stream_differs(model):
    """Text-to-image generates image tokens only, and guidance triples the batch and changes the tokens a
    single unguided stream would choose."""
    runner, session, guided = run_once(model, case_for("ti", 6, 12))
    assert torch.isin(guided.value, runner.vocab.image_ids).all()
    assert session.cache.layers[0].keys.shape[0] == 3  # the batch tripled
    _, single_session, single = run_once(model, case_for("ti", 6, 12), guidance=None)
    assert single_session.cache.layers[0].keys.shape[0] == 1
    assert "image_select_s" in single.stages_s and "cfg_s" not in single.stages_s
    assert not torch.equal(guided.value, single.value)  # guidance changes the choice


@pytest.mark.parametrize("task, batch, rows", [("tt", 2, 2), ("it", 1, 1), ("ti", 1, 3)])
def test_prefill_runs_the_lm_head_on_the_last_position_of_each_stream(model, task, batch, rows):
    """Chameleon's prefill, like every decode step, computes logits for each row's last position only ([rows,
    vocab]: the batch, or ti's three guidance streams per image), never over the prompt; and the teacher-forced
    scores still cover every generated position."""
    case = case_for(task, 6, 3, batch=batch)
    runner = ChameleonRunner(case, model, "cpu", seed=0)
    session = runner.session(plan_for(case.stack))
    prepared = runner.inputs((6, 3))
    with lm_head_shapes(model) as shapes:
        output = runner.run(session, prepared)
    assert shapes == [(rows, model.config.vocab_size)] * 3  # the prefill, then two decode steps
    scores = runner.forced_scores(session, prepared, output.value)
    assert scores.shape == (batch, 3, model.config.vocab_size)


@pytest.mark.parametrize("stack", [("sdpa",), ("sdpa", "static")])
def test_levers_keep_the_greedy_image_tokens(model, stack):
    """The sdpa and static levers keep eager's greedy image tokens and show their evidence."""
    _, _, reference = run_once(model, case_for("ti", 6, 10, stack=("eager",)))
    _, session, output = run_once(model, case_for("ti", 6, 10, stack=stack))
    assert torch.equal(reference.value, output.value)
    for lever in stack:
        LEVERS.get(lever).evidence(session)  # raises when the lever did not take effect


def test_image_token_budget_is_enforced(model):
    """Asking for more tokens than one image holds is refused, saying how many tokens an image is."""
    from harness.errors import HarnessError

    over = preset_image_tokens("tiny") + 1
    runner = ChameleonRunner(case_for("ti", 4, over), model, "cpu", seed=0)
    with pytest.raises(HarnessError, match=f"an image is {over - 1} tokens"):
        runner.inputs((4, over))
