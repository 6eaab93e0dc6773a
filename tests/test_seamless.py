"""SeamlessM4T v2: builder, beam search, KV-cache reorder lever, stages, matrix axis (CPU, tiny)."""

import copy

import pytest
import torch
from transformers import DynamicCache, EncoderDecoderCache, StaticCache

from harness.families import FAMILIES
from harness.families.base import CHOICE_MARKS, timings
from harness.families.models import build_model, count_parameters_on_meta
from harness.families.seamless.beam import extend, reorder_index_select, reorder_inplace
from harness.families.seamless.model import PRESETS, codes, config, generation_config, synthetic_subword
from harness.families.seamless.positions import fix_positions, positions_without_growth
from harness.families.seamless.runner import TASKS, SeamlessRunner, stage_names
from harness.levers import LEVERS, LeverNotInEffect
from harness.levers.plan import plan_for
from harness.levers.reorder import probe_reorder
from harness.measure.clock import Marks
from harness.spec.matrix import Case, expand, fingerprint
from harness.spec.workload import Lengths
from tests.test_prefill import lm_head_shapes

# docs/facts.md: SeamlessM4T v2 large has "about 2.3B parameters"; that rounded figure is the only
# published size, so the tolerance is 2% of it.
PUBLISHED_PARAMETERS, TOLERANCE = 2.3e9, 0.02


@pytest.fixture(scope="module")
def model():
    return build_model("seamless", "tiny", "float32", "cpu", seed=0)


def case_for(task, beams, prompt_len=16, gen_len=6, stack=("eager",)):
    return Case("seamless", task, "tiny", "float32", 1, Lengths(prompt_len, gen_len), stack, beams=beams)


def run_once(model, case):
    runner = SeamlessRunner(case, model, "cpu", seed=0)
    session = runner.session(plan_for(case.stack))
    output = runner.run(session, runner.inputs((case.lengths.prompt_len, case.lengths.gen_len)))
    return runner, session, output


# -- the reorder lever: equivalence with index_select on random caches and beams -------------------
def random_cache(cfg, batch, beams, filled, max_len, source_len, generator, static=True):
    """A filled encoder-decoder cache: random self-attention states, cross-attention states
    identical within each input's beams (as after encoding one input once)."""
    rows, heads = batch * beams, cfg.decoder_attention_heads
    head_dim = cfg.hidden_size // heads
    self_attention = StaticCache(config=cfg, max_cache_len=max_len) if static else DynamicCache(config=cfg)
    kv = EncoderDecoderCache(self_attention, DynamicCache(config=cfg))
    for layer in range(cfg.decoder_layers):
        keys, values = (torch.randn((rows, heads, filled, head_dim), generator=generator) for _ in range(2))
        kv.self_attention_cache.update(keys, values, layer)
        cross = [torch.randn((batch, heads, source_len, head_dim), generator=generator).repeat_interleave(beams, 0) for _ in range(2)]
        kv.cross_attention_cache.update(*cross, layer)
    return kv


def random_beam_idx(batch, beams, generator):
    """Each row's parent beam, drawn among its own input's beams (what beam search produces)."""
    parents = torch.randint(0, beams, (batch, beams), generator=generator)
    return (parents + torch.arange(batch).unsqueeze(1) * beams).view(-1)


def filled_states(kv, filled):
    return [
        (layer.keys[:, :, :filled].clone(), layer.values[:, :, :filled].clone())
        for cache in (kv.self_attention_cache, kv.cross_attention_cache)
        for layer in cache.layers
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("static", [True, False])
def test_inplace_reorder_equals_index_select_on_random_caches_and_beams(seed, static):
    """Reordering the cache in place gives index_select's states over several steps of random beams, static or
    dynamic, without replacing the self-attention buffers."""
    generator = torch.Generator().manual_seed(seed)
    cfg = config("tiny")
    batch, beams = 1 + seed % 3, 2 + seed % 4
    filled, max_len, source_len = 3 + seed, 16, 5 + seed
    reference = random_cache(cfg, batch, beams, filled, max_len, source_len, generator, static)
    inplace = copy.deepcopy(reference)
    self_buffers = [t.data_ptr() for layer in inplace.self_attention_cache.layers for t in (layer.keys, layer.values)]
    for _ in range(3):  # several steps in a row, each with its own beam choice
        beam_idx = random_beam_idx(batch, beams, generator)
        reorder_index_select(reference, beam_idx, filled)
        reorder_inplace(inplace, beam_idx, filled)
    for (want_k, want_v), (got_k, got_v) in zip(filled_states(reference, filled), filled_states(inplace, filled), strict=False):
        assert torch.equal(want_k, got_k) and torch.equal(want_v, got_v)
    assert self_buffers == [t.data_ptr() for layer in inplace.self_attention_cache.layers for t in (layer.keys, layer.values)]


@pytest.mark.parametrize("static", [True, False])
def test_index_select_reorder_equals_transformers_reorder_cache(static):
    """The written-out index_select reorder (no host sync on a static cache) leaves every layer, self- and
    cross-attention, as transformers' own reorder_cache does."""
    generator = torch.Generator().manual_seed(3)
    cfg = config("tiny")
    ours = random_cache(cfg, 2, 3, 4, 8, 5, generator, static)
    theirs = copy.deepcopy(ours)
    for _ in range(2):
        beam_idx = random_beam_idx(2, 3, generator)
        reorder_index_select(ours, beam_idx, 4)
        for cache in (theirs.self_attention_cache, theirs.cross_attention_cache):
            for layer in cache.layers:
                layer.reorder_cache(beam_idx)
    for (want_k, want_v), (got_k, got_v) in zip(filled_states(theirs, 8), filled_states(ours, 8), strict=True):
        assert torch.equal(want_k, got_k) and torch.equal(want_v, got_v)


@pytest.mark.parametrize("cache_length", [0, 5, torch.tensor(5)])
@pytest.mark.parametrize("by", ["input_ids", "inputs_embeds"])
def test_positions_without_the_growth_test_equal_transformers_positions(model, cache_length, by):
    """The decoder's position lookup without the per-step growth test gives transformers' positions, for a
    host or a device cache length, from ids (padding kept at the padding position) or from embeddings."""
    embedding = copy.deepcopy(model.text_decoder.embed_positions)
    ids = torch.tensor([[5, 7, embedding.padding_idx, 9]])
    inputs = {"input_ids": ids} if by == "input_ids" else {"inputs_embeds": torch.randn(1, 4, model.config.hidden_size)}
    expected = type(embedding).forward(embedding, **inputs, cache_length=cache_length)
    assert torch.equal(positions_without_growth(embedding, **inputs, cache_length=cache_length), expected)


def test_fixed_positions_grow_the_table_once_for_the_longest_sequence(model):
    """A session whose sequences pass the position table's end grows it up front, as the forward would
    have on reaching those positions, and then looks positions up without the growth test."""
    copied = copy.deepcopy(model)
    embedding = copied.text_decoder.embed_positions
    longest = embedding.weights.size(0) + 10
    fix_positions(copied, longest)
    assert embedding.weights.size(0) == embedding.padding_idx + 1 + longest + embedding.offset
    ids = torch.full((1, 1), 5)
    last = embedding(input_ids=ids, cache_length=torch.tensor(longest - 1))  # the last position a session reaches
    grown = type(embedding).forward(copy.deepcopy(embedding), input_ids=ids, cache_length=longest - 1)
    assert torch.equal(last, grown)


def test_inplace_reorder_differs_from_no_reorder():
    """An in-place reorder does change the self-attention states."""
    # The equivalence above is not vacuous: skipping the self-attention reorder gives other states.
    generator = torch.Generator().manual_seed(1)
    cfg = config("tiny")
    kv = random_cache(cfg, 1, 4, 5, 8, 3, generator)
    before = filled_states(kv, 5)
    reorder_inplace(kv, torch.tensor([3, 3, 0, 1]), 5)
    assert not torch.equal(before[0][0], filled_states(kv, 5)[0][0])


@pytest.mark.parametrize("reorder, tensors, replaced", [("index_select", 4, 4), ("inplace", 2, 0)])
def test_reorder_probe_counts_tensors_and_replaced_buffers(model, reorder, tensors, replaced):
    """The reorder probe counts each reorder's tensors and replaced buffers per step, beside index_select's
    count."""
    stack = ("sdpa", "static", "inplace-reorder") if reorder == "inplace" else ("sdpa", "static")
    _, session, _ = run_once(model, case_for("tt", 3, stack=stack))
    found = probe_reorder(session)
    layers = model.config.decoder_layers
    assert found["tensors_per_step"] == tensors * layers
    assert found["buffers_replaced_per_step"] == replaced * layers
    assert found["index_select_tensors_per_step"] == 4 * layers  # 96 for the 24-layer paper decoder
    assert found["reorders_per_step"] == 1.0


def test_reorder_lever_evidence_fails_without_the_lever(model):
    """The in-place reorder's evidence raises for a session that ran without it."""
    _, session, _ = run_once(model, case_for("tt", 3, stack=("sdpa", "static")))
    with pytest.raises(LeverNotInEffect):
        LEVERS.get("inplace-reorder").evidence(session)


# -- beam search and greedy: the loop against transformers' own generate -----------------------------
@pytest.mark.parametrize("beams", [1, 4])
def test_text_decoding_matches_transformers_generate(model, beams):
    """Greedy and beam-search text decoding give the tokens of transformers' own generate."""
    case = case_for("tt", beams, gen_len=8)
    runner, _, output = run_once(model, case)
    source = runner.inputs((16, 8)).source
    with torch.no_grad():
        expected = model.generate(
            input_ids=source, tgt_lang="fra", generate_speech=False, num_beams=beams, do_sample=False,
            max_new_tokens=8, min_new_tokens=8, early_stopping=False,
        ).sequences
    assert output.value.text.tolist() == expected[:, 2:].tolist()  # after decoder start and language
    assert len(set(output.value.text[0].tolist())) > 2  # diverse tokens: beams really diverge here


@pytest.mark.parametrize("task, beams", [("tt", 1), ("tt", 4), ("ss", 4)])
def test_prefill_runs_the_lm_head_on_the_last_position_of_each_beam(model, task, beams):
    """SeamlessM4T's decoder prefill, like every step, computes logits for each row's last position only
    ([batch x beams, vocab]), never over the decoder prefix; the speech-out pass adds no LM-head call."""
    case = case_for(task, beams, gen_len=4)
    runner = SeamlessRunner(case, model, "cpu", seed=0)
    session = runner.session(plan_for(case.stack))
    prepared = runner.inputs((case.lengths.prompt_len, 4))
    with lm_head_shapes(model) as shapes:
        runner.run(session, prepared)
    assert shapes == [(beams, model.config.vocab_size)] * 4  # the prefill, then three steps


def test_beam_choice_by_hand(model):
    """The beam choice keeps each input's best continuations among its own beams and extends the sequences
    from their parents."""
    runner = SeamlessRunner(case_for("tt", 2), model, "cpu", seed=0)
    # two inputs x two beams, vocabulary of 3: log-probabilities chosen so the winners are known
    logp = torch.log(torch.tensor([
        [0.7, 0.2, 0.1], [0.1, 0.1, 0.8],  # input 0: beam 0, beam 1
        [0.5, 0.4, 0.1], [0.3, 0.3, 0.4],  # input 1
    ]))
    scores = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    offsets = torch.tensor([[0], [2]])
    tokens, beam_idx, new_scores = runner.choose(logp, scores, offsets)
    # input 0: 0.5*0.8 (beam 1, token 2) > 0.5*0.7 (beam 0, token 0); input 1: 0.9*0.5, 0.9*0.4 (beam 0)
    assert tokens.view(-1).tolist() == [2, 0, 0, 1]
    assert beam_idx.tolist() == [1, 0, 2, 2]
    assert torch.allclose(new_scores.exp(), torch.tensor([[0.4, 0.35], [0.45, 0.36]]))
    sequences = extend(torch.tensor([[7], [8], [9], [10]]), tokens, beam_idx)
    assert sequences.tolist() == [[8, 2], [7, 0], [9, 0], [9, 1]]


# -- the pipeline: stages, units, inputs ---------------------------------------------------------------
@pytest.mark.parametrize(
    "task, beams, keys",
    [
        ("ss", 3, {"speech_encoder_s", "text_decoder_prefill_s", "kv_reorder_s", "text_decoder_steps_s", "text_to_unit_s", "vocoder_s"}),
        ("st", 1, {"speech_encoder_s", "text_decoder_prefill_s", "text_decoder_steps_s"}),
        ("ts", 1, {"text_encoder_s", "text_decoder_prefill_s", "text_decoder_steps_s", "text_to_unit_s", "vocoder_s"}),
        ("tt", 2, {"text_encoder_s", "text_decoder_prefill_s", "kv_reorder_s", "text_decoder_steps_s"}),
    ],
)
def test_stages_are_present_and_add_up_to_end_to_end(model, task, beams, keys):
    """Each task reports its own stages, all positive and adding up to end-to-end time, and speech output uses
    only units the vocoder has."""
    runner, _, output = run_once(model, case_for(task, beams, prompt_len=40 if task[0] == "s" else 12))
    stages = output.stages_s
    assert set(stages) == keys
    assert all(seconds > 0 for seconds in stages.values())
    assert sum(stages.values()) == pytest.approx(output.metrics["e2e_s"], rel=1e-9)
    assert output.value.text.shape == (1, 6) and len(output.metrics["tpot_s"]) == 5
    if runner.task.speech_out:
        units = output.value.units
        assert units.shape[1] == output.generated_tokens["unit"] > 0 and output.generated_tokens["waveform_samples"] > 0
        real = units[units != model.config.t2u_pad_token_id]
        assert runner.allowed_units[real].all()  # only ids the vocoder has


def test_stage_split_by_hand():
    """Stage times and token marks are split from the pipeline's marks, with the KV reorder counted apart from
    the decoder steps."""
    # encoder 1, prefill forward 2, first choice 3; step: reorder 3.5, forward 5, choice 6; t2u 8, vocoder 11
    names = ("encoder", "prefill", "prefill_choice", "reorder", "decode", "decode_choice", "text_to_unit", "vocoder")
    marks = Marks(names, (1.0, 2.0, 3.0, 3.5, 5.0, 6.0, 8.0, 11.0))
    _, stages = timings(marks, CHOICE_MARKS, stage_names(TASKS["ss"], beam_search=True))
    assert stages == {
        "speech_encoder_s": 1.0, "text_decoder_prefill_s": 2.0, "kv_reorder_s": 0.5, "text_decoder_steps_s": 2.5,
        "text_to_unit_s": 2.0, "vocoder_s": 3.0,
    }
    assert marks.of(*CHOICE_MARKS) == [3.0, 6.0]


def test_unit_mismatch_is_reported(model):
    """A changed unit is reported as a mismatch, and equal outputs have none."""
    runner, _, output = run_once(model, case_for("ts", 1))
    changed = copy.deepcopy(output.value)
    changed.units[0, 0] += 1
    assert "unit" in runner.compare(output.value, changed).describe()
    assert runner.compare(output.value, copy.deepcopy(output.value)) is None


def test_inputs_are_seeded_and_shaped(model):
    """Speech and text inputs are seeded and shaped as the model expects, and text is framed by the source
    language and end of sequence."""
    speech = SeamlessRunner(case_for("st", 4), model, "cpu", seed=0)
    first, again = speech.inputs((40, 5)), speech.inputs((40, 5))
    assert first.source.shape == (1, 40, model.config.feature_projection_input_dim)
    assert torch.equal(first.source, again.source) and first.prefix.shape == (4, 2)
    text = SeamlessRunner(case_for("tt", 1), model, "cpu", seed=0).inputs((10, 5)).source
    lang = codes(model)
    assert text.shape == (1, 10) and text[0, 0] == lang.src_lang_id and text[0, -1] == lang.eos_id


# -- builder and matrix ---------------------------------------------------------------------------------
def test_paper_preset_matches_published_size_on_meta():
    """The paper preset's parameter count on meta lies within 2% of the published 2.3B."""
    count = count_parameters_on_meta("seamless", "paper")
    assert abs(count - PUBLISHED_PARAMETERS) / PUBLISHED_PARAMETERS < TOLERANCE, count


def test_generation_config_carries_what_the_pipeline_reads(model):
    """The tiny generation config maps languages, text ids and characters within the model's vocabularies."""
    gen = model.generation_config
    assert set(gen.text_decoder_lang_to_code_id.values()) <= set(range(PRESETS["tiny"]["vocab_size"]))
    assert len(gen.id_to_text) == model.config.vocab_size
    assert all(char in gen.char_to_id for char in synthetic_subword(123))
    assert max(gen.char_to_id.values()) < model.config.char_vocab_size


def test_beams_are_in_case_id_and_fingerprint():
    """Beams are named in the case id and the fingerprint, round-trip through the dict, and stay out of cases
    without them."""
    greedy, beam = case_for("tt", 1), case_for("tt", 4)
    assert greedy.id.endswith("-greedy-fp32-eager") and "-beam4-" in beam.id
    assert fingerprint(greedy, {}) != fingerprint(beam, {})
    assert "beams" not in Case("llama", "tt", "tiny", "float32", 1, Lengths(8, 8), ("eager",)).to_dict()
    assert Case.from_dict(beam.to_dict()) == beam


def test_expansion_covers_every_task_greedy_and_beam_and_drops_greedy_reorder():
    """Seamless expansion covers every task greedy and with beams, and drops the in-place reorder for greedy
    cases, saying it needs beam search."""
    cases, dropped = expand(FAMILIES["seamless"], "tiny", ("float32",), "cpu")
    assert {(c.task, c.beams) for c in cases} == {(t, b) for t in ("ss", "st", "ts", "tt") for b in (1, 4)}
    assert not [c for c in cases if c.beams == 1 and "inplace-reorder" in c.stack]
    assert dropped and all("needs beam search" in d.reason for d in dropped)


def test_paper_preset_uses_the_generation_configs_beam_count():
    """The paper preset's workloads run greedy and with the generation config's beam count."""
    beams = {w.beams for w in FAMILIES["seamless"].workloads["paper"]}
    assert beams == {1, generation_config(config("paper")).num_beams}


def test_static_cache_holds_prefix_and_longest_generation(model):
    """The static cache holds the decoder prefix and the longest generation the length distribution allows."""
    case = Case("seamless", "ss", "tiny", "float32", 1, Lengths(40, 6, dist="lognormal"), ("sdpa", "static"), beams=2)
    _, session, _ = run_once(model, case)
    assert session.max_cache_len == 2 + 6 * 4  # prefix + gen_len x the distribution's max factor
    assert session.cache.layers[0].keys.shape[2] == session.max_cache_len
