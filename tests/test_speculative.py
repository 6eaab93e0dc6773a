"""Speculative greedy decoding (selfspec, lookup): equal to plain greedy, honest bookkeeping."""

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.families import FAMILIES
from harness.families.decoder import DecoderRunner, DecoderSession, decode_positions, generate
from harness.families.models import build_model
from harness.families.speculative import (
    Bookkeeping,
    Drafting,
    accepted_prefix,
    crop_to,
    lookup_continuation,
    round_metrics,
    spec_marks,
    speculative_generate,
)
from harness.levers import LEVERS, LeverNotInEffect
from harness.levers.plan import Plan, plan_for
from harness.measure.clock import CpuClock
from harness.measure.workload import execute, quick_tokens
from harness.options import RunOptions
from harness.spec.matrix import Case, fingerprint
from harness.spec.selection import select
from harness.spec.weights import WEIGHT_VARIANTS
from harness.spec.workload import Lengths, prompt_ids
from tests.test_prefill import lm_head_shapes

LAYERS = 4  # the tiny llama preset


@pytest.fixture(scope="module")
def models():
    """Random weights and the synthetic draft-friendly variant of the same seed."""
    return {
        weights: build_model("llama", "tiny", "float32", "cpu", seed=0, weights=weights)
        for weights in ("", "draft-friendly")
    }


def greedy(model, ids, gen_len):
    session = DecoderSession(model, Plan(attn_implementation="sdpa"), ids.shape[0], ids.shape[1] + gen_len)
    return generate(session, ids, decode_positions(ids.shape[0], ids.shape[1], gen_len, "cpu"), CpuClock(gen_len)).tokens


def speculate(model, ids, gen_len, drafting, cache="dynamic"):
    plan = Plan(attn_implementation="sdpa", cache=cache, drafting=drafting)
    session = DecoderSession(model, plan, ids.shape[0], ids.shape[1] + gen_len)
    return session, speculative_generate(session, ids, gen_len, CpuClock(spec_marks(gen_len)))


def check_bookkeeping(generation, gen_len, drafting):
    book = generation.book
    assert generation.tokens.shape[1] == gen_len
    assert book.output_tokens == sum(generation.emitted) == gen_len - 1
    assert book.rounds == len(generation.emitted) and book.accepted == sum(e - 1 for e in generation.emitted)
    assert 0 <= book.accepted <= book.drafted <= book.rounds * drafting.draft_len
    assert book.draft_forwards == (book.drafted if drafting.method == "selfspec" else 0)
    assert len(generation.marks_s) == 1 + 2 * book.rounds


drafting = st.one_of(
    st.builds(Drafting, st.just("selfspec"), st.integers(1, 6), exit_layer=st.integers(1, LAYERS - 1)),
    st.builds(Drafting, st.just("lookup"), st.integers(1, 6), max_ngram=st.integers(1, 4)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    drafting=drafting,
    weights=st.sampled_from(("", "draft-friendly")),
    batch=st.sampled_from((1, 1, 2, 3)),
    seed=st.integers(0, 10_000),
    prompt_len=st.integers(2, 24),
    gen_len=st.integers(1, 24),
    cache=st.sampled_from(("dynamic", "static")),
)
def test_speculation_equals_greedy(models, drafting, weights, batch, seed, prompt_len, gen_len, cache):
    """Speculative decoding by either drafting method gives plain greedy's tokens, with consistent
    bookkeeping, for any weights, batch, lengths and cache."""
    model = models[weights]
    ids = prompt_ids(batch, prompt_len, model.config.vocab_size, seed)
    _, generation = speculate(model, ids, gen_len, drafting, cache)
    assert torch.equal(generation.tokens, greedy(model, ids, gen_len))
    check_bookkeeping(generation, gen_len, drafting)


def test_draft_friendly_weights_are_accepted_and_random_ones_hardly(models):
    """The synthetic variant does what it is for; random weights report their low acceptance."""
    ids = prompt_ids(1, 32, 1024, seed=0)
    rates = {}
    for weights, model in models.items():
        _, generation = speculate(model, ids, 48, Drafting("selfspec", 4, exit_layer=2))
        rates[weights] = generation.book.acceptance_rate
    assert rates["draft-friendly"] > 0.5 > 0.2 > rates[""]


@pytest.mark.parametrize("drafting", [Drafting("selfspec", 4, exit_layer=2), Drafting("lookup", 4, max_ngram=2)])
def test_speculative_forwards_compute_only_the_logits_they_use(models, drafting):
    """The speculative loop's prefill computes the last prompt position's logits only, each early-exit draft
    one position's, and each verify forward exactly its fed positions' (the last token and the drafts)."""
    model = models["draft-friendly"]
    ids = prompt_ids(2, 24, model.config.vocab_size, seed=0).repeat(1, 2)  # repeats give lookup its drafts
    with lm_head_shapes(model) as shapes:
        _, generation = speculate(model, ids, 16, drafting)
    book, vocab = generation.book, model.config.vocab_size
    assert shapes[0] == (2, 1, vocab)  # the prefill
    assert all(rows == 2 and width <= drafting.draft_len + 1 and v == vocab for rows, width, v in shapes)
    assert len(shapes) == 1 + book.draft_forwards + book.rounds
    assert sum(width for _, width, _ in shapes[1:]) == book.draft_forwards + book.drafted + book.rounds
    assert book.drafted > 0


def test_draft_friendly_scales_only_the_later_layers():
    """The draft-friendly variant scales only the later layers' output projections and leaves the other
    weights as drawn."""
    random, friendly = (build_model("llama", "tiny", "float32", "cpu", 0, weights=w) for w in ("", "draft-friendly"))
    scale = WEIGHT_VARIANTS["draft-friendly"].scale
    for index, (a, b) in enumerate(zip(random.model.layers, friendly.model.layers, strict=False)):
        factor = 1.0 if index < LAYERS // 2 else scale
        assert torch.allclose(b.self_attn.o_proj.weight, a.self_attn.o_proj.weight * factor)
        assert torch.allclose(b.mlp.down_proj.weight, a.mlp.down_proj.weight * factor)
        assert torch.equal(b.self_attn.q_proj.weight, a.self_attn.q_proj.weight)


def test_accepted_prefix_is_the_shortest_over_rows():
    """The accepted prefix is the shortest run of matching drafts from the start, over the batch's rows."""
    drafts = torch.tensor([[1, 2, 3, 4], [1, 2, 9, 4]])
    assert accepted_prefix(drafts, torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]])) == 2
    assert accepted_prefix(drafts[:1], torch.tensor([[1, 2, 3, 4]])) == 4
    assert accepted_prefix(drafts[:1], torch.tensor([[0, 2, 3, 4]])) == 0  # a later match does not count
    assert accepted_prefix(drafts[:, :0], drafts[:, :0]) == 0


def test_bookkeeping_figures():
    """Bookkeeping derives acceptance rate, mean accepted length, output tokens and verifies per token,
    refuses more accepted than drafted tokens, and has no rate before any draft."""
    book = Bookkeeping()
    book.add_round(drafted=4, accepted=4, draft_forwards=4)
    book.add_round(drafted=4, accepted=0, draft_forwards=4)
    book.add_round(drafted=0, accepted=0, draft_forwards=0)
    found = book.summary()
    assert found["acceptance_rate"] == 0.5 and found["mean_accepted_len"] == pytest.approx(4 / 3)
    assert found["output_tokens"] == 7 and found["verifies_per_token"] == pytest.approx(3 / 7)
    with pytest.raises(ValueError):
        book.add_round(drafted=2, accepted=3, draft_forwards=2)
    assert Bookkeeping().acceptance_rate is None


def test_round_metrics_share_each_round_among_its_tokens():
    """Round metrics split each round into draft and verify time and share it among the tokens it emitted."""
    marks = [1.0, 1.5, 2.0, 2.25, 3.0]  # prefill, then two rounds of (draft end, verify end)
    found = round_metrics(marks, emitted=[3, 1])
    assert found["draft_s"] == [0.5, 0.25] and found["verify_s"] == [0.5, 0.75]
    assert found["time_per_forward_s"] == [1.0, 1.0]
    assert found["tpot_s"] == pytest.approx([1 / 3] * 3 + [1.0])
    assert sum(found["tpot_s"]) == pytest.approx(marks[-1] - marks[0])


@pytest.mark.parametrize(
    "sequence, count, ngram, expected",
    [
        ([5, 6, 7, 8, 5, 6], 2, 3, [7, 8]),  # "5 6" occurred before: its continuation
        ([1, 2, 3, 1, 9, 3], 3, 2, [1, 9, 3]),  # no 2-gram match; the 1-gram "3" first occurred at 2
        ([1, 2, 3, 4], 2, 3, []),  # nothing repeats
        ([7, 7], 4, 3, [7]),  # the continuation stops at the end of the text
        ([4, 1, 2, 4, 1, 2, 4, 1], 3, 2, [2, 4, 1]),  # the first occurrence, as transformers does
    ],
)
def test_lookup_continuation(sequence, count, ngram, expected):
    """Lookup drafting continues the longest earlier n-gram match, at its first occurrence, up to the end of
    the text."""
    assert lookup_continuation(sequence, count, ngram) == expected


def test_crop_rolls_back_only_longer_layers(models):
    """Cropping the cache rolls back only the layers longer than the target length."""
    session = DecoderSession(models[""], Plan(attn_implementation="sdpa"), 1, 32)
    session.prefill(prompt_ids(1, 8, 1024, 0))
    session.cache.layers[0].crop(-2)  # as after an early-exit draft, layers differ in length
    crop_to(session.cache, 7)
    assert [layer.get_seq_length() for layer in session.cache.layers] == [6, 7, 7, 7]


def test_exit_layer_must_leave_layers_to_skip(models):
    """An exit layer that leaves no layer to skip is refused, and the model's layer count is restored."""
    ids = prompt_ids(1, 8, 1024, 0)
    with pytest.raises(ValueError, match="exit_layer must be between 1 and 3"):
        speculate(models[""], ids, 4, Drafting("selfspec", 2, exit_layer=LAYERS))
    assert models[""].config.num_hidden_layers == LAYERS  # restored after the failed draft


@pytest.mark.parametrize("lever", ["selfspec", "lookup"])
def test_evidence_needs_drafted_tokens(models, lever):
    """Speculative evidence raises until the lever has run and drafted a token, then reports its drafts and
    acceptance."""
    session = DecoderSession(models[""], plan_for(("sdpa", lever), (("draft_len", 3), ("exit_layer", 2), ("max_ngram", 2))), 1, 16)
    with pytest.raises(LeverNotInEffect, match="never ran"):
        LEVERS.get(lever).evidence(session)
    speculative_generate(session, prompt_ids(1, 8, 1024, 0), 2, CpuClock(spec_marks(2)))  # 2 tokens: no room to draft
    session.speculation.merge(Bookkeeping(rounds=1, output_tokens=1))
    with pytest.raises(LeverNotInEffect, match="no token was ever drafted"):
        LEVERS.get(lever).evidence(session)
    session.speculation.merge(Bookkeeping(rounds=1, drafted=3, accepted=1, output_tokens=2))
    found = LEVERS.get(lever).evidence(session)
    assert found["drafted"] == 3 and found["acceptance_rate"] == pytest.approx(1 / 3) and found["draft_len"] == 3


def test_lever_params_reach_the_plan_the_id_and_the_fingerprint():
    """Lever parameters reach the plan, the case id and the fingerprint, round-trip through the dict, and
    follow the options."""
    selection = select(RunOptions(families="llama", stacks="sdpa+selfspec,sdpa+lookup"), cuda_available=False)
    cases, _ = selection.expand("llama")
    ids = {case.id for case in cases}
    assert "llama-tt-tiny-b1-p128-g64-fp32-sdpa+selfspec-exit2-draft4" in ids  # exit 0 -> half of 4 layers
    assert "llama-tt-tiny-b1-p32-g48-fp32-draftfriendly0.05-sdpa+lookup-ngram3-draft4" in ids
    plan = plan_for(cases[0].stack, cases[0].params)
    assert plan.drafting == Drafting("selfspec", draft_len=4, exit_layer=2)
    longer = dataclasses.replace(cases[0], params=(("exit_layer", 2), ("draft_len", 8)))
    assert longer.id.endswith("exit2-draft8") and fingerprint(longer, {}) != fingerprint(cases[0], {})
    assert Case.from_dict(longer.to_dict()) == longer
    other = select(RunOptions(families="llama", stacks="sdpa+selfspec", exit_layer=1, draft_len=2), False)
    assert all(case.id.endswith("-exit1-draft2") for case in other.expand("llama")[0])


def test_an_exit_layer_beyond_the_model_fails_with_one_line():
    """An exit layer beyond the model is refused with one line."""
    with pytest.raises(HarnessError, match="--exit-layer 4 leaves no layer to skip in llama tiny"):
        select(RunOptions(families="llama", exit_layer=4), cuda_available=False)


def test_draft_friendly_is_labelled_and_dropped_for_checkpoints(tmp_path):
    """Draft-friendly cases are labelled in their id and fingerprint, and dropped as synthetic when the
    weights come from a checkpoint."""
    selection = select(RunOptions(families="llama", stacks="eager"), cuda_available=False)
    friendly = [case for case in selection.expand("llama")[0] if case.weights]
    assert friendly and all("draftfriendly" in case.id for case in friendly)
    plain = dataclasses.replace(friendly[0], weights="")
    assert fingerprint(plain, {}) != fingerprint(friendly[0], {})
    from harness.families.models import model_config

    model_config("llama", "tiny").save_pretrained(tmp_path)  # a checkpoint folder the selection accepts
    from_checkpoint = select(RunOptions(families="llama", stacks="eager", checkpoint_dir=str(tmp_path)), False)
    cases, dropped = from_checkpoint.expand("llama")
    assert not any(case.weights for case in cases)
    assert any("synthetic" in cell.reason and "draftfriendly" in cell.case_id for cell in dropped)


def test_speculative_stacks_run_only_where_they_apply():
    """Draft-friendly workloads run the baseline stack first beside their own, and Chameleon declares no
    speculative stack."""
    llama = FAMILIES["llama"]
    friendly = [w for w in llama.workloads["tiny"] if w.weights]
    assert friendly and all(w.stacks[0] == llama.baseline for w in friendly)  # the baseline beside them
    assert not any("selfspec" in stack for stack in FAMILIES["chameleon"].stacks)


def test_lookup_quick_check_is_long_enough_to_draft():
    """The lookup lever's quick check generates enough tokens to draft, while other stacks keep the default
    count."""
    case = Case("llama", "tt", "tiny", "float32", 1, Lengths(16, 64), ("sdpa", "lookup"))
    assert quick_tokens(case, RunOptions()) == LEVERS.get("lookup").quick_tokens > RunOptions().quick_tokens
    assert quick_tokens(dataclasses.replace(case, stack=("sdpa",)), RunOptions()) == RunOptions().quick_tokens


def test_measured_case_records_acceptance_and_both_times(ctx_factory):
    """A measured speculative case records its acceptance, one TPOT sample per token, and per-round draft and
    verify times."""
    ctx = ctx_factory(benchmark=True, iterations=2, warmup=0)
    params = (("exit_layer", 2), ("draft_len", 4))
    case = Case("llama", "tt", "tiny", "float32", 1, Lengths(16, 24), ("sdpa", "selfspec"), weights="draft-friendly", params=params)
    record = execute(case, ctx, measure=True).to_record()
    assert record["status"] == "ok", record["message"]
    assert record["outputs_match"] and record["weights"].startswith("synthetic draft-friendly")
    assert len(record["tpot_s"]) == 2 * 23  # one sample per output token after the first
    rounds = sum(record["verify_forwards"])
    assert len(record["time_per_forward_s"]) == len(record["draft_s"]) == len(record["verify_s"]) == rounds < 2 * 23
    assert record["acceptance_rate"] == sum(record["accepted_tokens"]) / sum(record["drafted_tokens"])
    assert record["mean_accepted_len"] == sum(record["accepted_tokens"]) / rounds
    assert record["evidence"]["selfspec"]["exit_layer"] == 2


def test_runner_speculates_only_under_a_drafting_plan(models):
    """The decoder runner speculates only under a drafting plan, giving the same tokens in fewer verify
    rounds."""
    case = Case("llama", "tt", "tiny", "float32", 2, Lengths(8, 12), ("sdpa",))
    runner = DecoderRunner(case, models["draft-friendly"], "cpu", 0)
    inputs = runner.inputs((8, 12))
    plain = runner.run(runner.session(plan_for(("sdpa",))), inputs)
    assert plain.metrics["time_per_forward_s"] == plain.metrics["tpot_s"]
    spec_session = runner.session(plan_for(("sdpa", "selfspec"), (("exit_layer", 2), ("draft_len", 3))))
    spec = runner.run(spec_session, inputs)
    assert torch.equal(plain.value, spec.value)  # batch 2: the rows advance together
    assert spec.metrics["verify_forwards"] == spec_session.speculation.rounds < 11


def test_profiled_iteration_has_one_decode_range_per_verify_round(models):
    """A profiled speculative iteration opens one prefill range and one decode range per verify round, and
    keeps every token's clock mark."""
    from harness.measure.profile.timeline import PHASE_RANGE_PREFIX

    case = Case("llama", "tt", "tiny", "float32", 1, Lengths(8, 12), ("sdpa", "selfspec"))
    runner = DecoderRunner(case, models["draft-friendly"], "cpu", 0)
    session = runner.session(plan_for(case.stack, (("exit_layer", 2), ("draft_len", 3))))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        output = runner.run(session, runner.inputs((8, 12)), annotate=True)
    names = [event.name for event in prof.events()]
    assert names.count(PHASE_RANGE_PREFIX + "prefill") == 1
    assert names.count(PHASE_RANGE_PREFIX + "decode") == output.metrics["verify_forwards"] < 11
    assert len(output.metrics["tpot_s"]) == 11  # the raw clock kept every mark
