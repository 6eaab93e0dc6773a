"""The decoder runner and the levers on the tiny Llama model (CPU)."""

import time

import pytest
import torch
from transformers import DynamicCache, StaticCache

from harness.families.decoder import PROBE_PROMPT_LEN, DecoderSession, decode_positions, forced_scores, generate
from harness.families.models import build_model
from harness.levers import LEVERS, LeverNotInEffect
from harness.levers.plan import plan_for
from harness.measure import memory
from harness.measure.clock import CpuClock
from harness.measure.memory import make_peak
from harness.spec.workload import prompt_ids
from tests.test_prefill import lm_head_shapes

PROMPT, GEN = 16, 6


@pytest.fixture(scope="module")
def model():
    return build_model("llama", "tiny", "float32", "cpu", seed=0)


def run(model, stack, batch=2):
    session = DecoderSession(model, plan_for(stack), batch, PROMPT + GEN)
    ids = prompt_ids(batch, PROMPT, model.config.vocab_size, seed=0)
    out = generate(session, ids, decode_positions(batch, PROMPT, GEN, "cpu"), CpuClock(GEN))
    return session, out


def test_generation_marks_one_per_token(model):
    """Generation takes one clock mark per token, each later than the last."""
    _, out = run(model, ("eager",))
    assert out.tokens.shape == (2, GEN)
    assert len(out.marks_s) == GEN
    assert all(later > earlier for earlier, later in zip(out.marks_s, out.marks_s[1:], strict=False))


@pytest.mark.parametrize("stack", [("sdpa",), ("sdpa", "static"), ("eager", "static")])
def test_levers_keep_greedy_tokens(model, stack):
    """The sdpa and static levers keep eager's greedy tokens."""
    _, reference = run(model, ("eager",))
    _, out = run(model, stack)
    assert torch.equal(reference.tokens, out.tokens)


@torch.no_grad()
def full_logits_greedy(model, ids, gen_len):
    """Greedy tokens from uncached forwards that compute logits at every position (the old prefill's
    [batch, prompt, vocab]), choosing from the last: the answer before the LM head was cut to one row."""
    sequence = ids
    for _ in range(gen_len):
        logits = model(input_ids=sequence, use_cache=False).logits
        assert logits.shape[1] == sequence.shape[1]
        sequence = torch.cat([sequence, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return sequence[:, ids.shape[1] :]


@pytest.mark.parametrize("stack", [("eager",), ("sdpa",), ("sdpa", "static")])
def test_prefill_runs_the_lm_head_on_the_last_prompt_position_only(model, stack):
    """Llama's prefill, like every decode step, computes logits for the last position only ([batch, 1,
    vocab], as generate() and serving engines do), never [batch, prompt, vocab]."""
    with lm_head_shapes(model) as shapes:
        session, out = run(model, stack)
    assert shapes == [(2, 1, model.config.vocab_size)] * GEN  # the prefill, then GEN - 1 decode steps
    assert out.tokens.shape == (2, GEN)


def test_last_position_logits_keep_the_greedy_tokens_of_full_logits(model):
    """Cutting the LM head to the last position leaves the greedy tokens of forwards that compute every
    position's logits unchanged."""
    _, out = run(model, ("sdpa",))
    expected = full_logits_greedy(model, prompt_ids(2, PROMPT, model.config.vocab_size, seed=0), GEN)
    assert torch.equal(out.tokens, expected)


@torch.no_grad()
def test_forced_scores_give_logits_at_every_generated_position(model):
    """The teacher-forced path (lossy levers' output check) still scores every generated position: [batch,
    tokens, vocab], each equal to an uncached forward's logits over the prompt and the forced tokens before it."""
    session, out = run(model, ("sdpa",))
    ids = prompt_ids(2, PROMPT, model.config.vocab_size, seed=0)
    reference = out.tokens
    with lm_head_shapes(model) as shapes:
        scores = forced_scores(session, ids, decode_positions(2, PROMPT, GEN, "cpu"), reference)
    assert scores.shape == (2, GEN, model.config.vocab_size)
    assert shapes == [(2, 1, model.config.vocab_size)] * GEN
    full = model(input_ids=torch.cat([ids, reference], dim=1), use_cache=False).logits
    expected = full[:, PROMPT - 1 : PROMPT - 1 + GEN]  # the logits that chose each generated token
    assert torch.allclose(scores, expected, atol=1e-4, rtol=1e-4)


def test_attention_evidence_sees_different_operators(model):
    """Attention evidence records the operators each implementation really ran, softmax for eager and scaled
    dot-product for sdpa."""
    eager_session, _ = run(model, ("eager",))
    eager = LEVERS.get("eager").evidence(eager_session)
    sdpa_session, _ = run(model, ("sdpa",))
    sdpa = LEVERS.get("sdpa").evidence(sdpa_session)
    assert eager["attn_implementation"] == "eager" and "aten::softmax" in eager["attention_ops"]
    assert any("scaled_dot_product" in op for op in sdpa["attention_ops"])
    assert not any("scaled_dot_product" in op for op in eager["attention_ops"])


@pytest.mark.parametrize("stack", [("sdpa",), ("sdpa", "static")])
def test_attention_evidence_probes_a_decode_step_over_the_sessions_cache(model, monkeypatch, stack):
    """The SDPA evidence comes from a decode step as the timed loop runs it (one query over the session's
    own cache, a static cache's mask included), not from an uncached prompt (whose skipped mask lets
    another backend run), and the cache is reset for the runs after it."""
    session, _ = run(model, stack)
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, attn_mask=None, **kwargs):
        calls.append((key.shape[-2], attn_mask is not None))
        return real(query, key, value, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    LEVERS.get("sdpa").evidence(session)
    decode = calls[-model.config.num_hidden_layers:]  # the profiled step: one call per layer
    # Keys: the cache's (a static cache attends over all its slots through a mask), not a bare prompt's.
    want = (PROMPT + GEN, True) if "static" in stack else (PROBE_PROMPT_LEN + 1, False)
    assert set(decode) == {want}
    assert session.cache.get_seq_length() == 0


def test_attention_evidence_catches_a_lever_that_did_not_apply(model):
    """The sdpa evidence raises when the model ran eager attention."""
    session, _ = run(model, ("eager",))
    with pytest.raises(LeverNotInEffect, match="sdpa: model runs 'eager' attention"):
        LEVERS.get("sdpa").evidence(session)


def test_static_cache_evidence(model):
    """Static-cache evidence names the StaticCache and its length, and raises for a dynamic cache."""
    session, _ = run(model, ("sdpa", "static"))
    assert isinstance(session.cache, StaticCache)
    assert LEVERS.get("static").evidence(session) == {"cache_class": "StaticCache", "max_cache_len": PROMPT + GEN}
    dynamic, _ = run(model, ("sdpa",))
    assert isinstance(dynamic.cache, DynamicCache)
    with pytest.raises(LeverNotInEffect, match="not StaticCache"):
        LEVERS.get("static").evidence(dynamic)


def test_compile_evidence_and_no_recompile_in_timed_region(model):
    """A compiled session keeps the tokens and records its graphs with no graph break and no recompile during
    timing."""
    session, reference = run(model, ("sdpa", "static", "compile"))
    ids = prompt_ids(2, PROMPT, model.config.vocab_size, seed=0)
    with session.timed():
        out = generate(session, ids, decode_positions(2, PROMPT, GEN, "cpu"), CpuClock(GEN))
    assert torch.equal(out.tokens, reference.tokens)
    found = LEVERS.get("compile").evidence(session)
    assert found["graphs"] >= 1 and found["graph_breaks"] == 0 and found["recompiles_during_timing"] == 0


@pytest.mark.parametrize("marked", [True, False])
def test_a_growing_dynamic_cache_compiles_one_symbolic_graph(model, monkeypatch, marked):
    """Over a dynamic cache, whose length grows each step, the compiled step compiles one graph (the length
    marked dynamic up front) where unmarked it compiled two (the first length, then symbolic); both keep the
    tokens, and a timed run at another prompt length recompiles nothing."""
    from harness.levers import compile as compile_lever

    if not marked:
        monkeypatch.setattr(compile_lever, "mark_growing_cache", lambda cache: None)
    compile_lever.reset_compiled()  # as before each workload: no graph of an earlier test serves this one
    session, reference = run(model, ("sdpa", "compile"))
    assert LEVERS.get("compile").evidence(session)["graphs"] == (1 if marked else 2)
    if marked:
        ids = prompt_ids(2, PROMPT + 3, model.config.vocab_size, seed=1)
        session.reset()
        with session.timed():
            generate(session, ids, decode_positions(2, PROMPT + 3, GEN, "cpu"), CpuClock(GEN))
        assert torch.equal(reference.tokens, run(model, ("sdpa",))[1].tokens)


def test_compile_fails_the_case_when_timing_recompiles(model):
    """A recompile inside timed iterations fails the case."""
    from harness.levers.compile import CompiledDuringTiming

    session, _ = run(model, ("sdpa", "static", "compile"))
    ids = prompt_ids(1, PROMPT, model.config.vocab_size, seed=0)  # another batch size: new guards
    with pytest.raises(CompiledDuringTiming, match="inside timed iterations"):
        with session.timed():
            session.batch_size = 1
            session.cache = None
            session.reset()
            generate(session, ids, decode_positions(1, PROMPT, GEN, "cpu"), CpuClock(GEN))


def test_peak_memory_sees_an_allocation():
    """The CPU peak sees a 64 MiB allocation."""
    peak = make_peak("cpu")
    peak.start()
    block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched
    assert peak.peak_bytes() >= 48 * 1024 * 1024, peak.method
    del block


def _leave_free_memory_resident_in_the_heap():
    # Freeing a 20 MiB mmapped block lifts glibc's mmap threshold, so the 16 MiB blocks come from
    # the heap; freeing all but the top one leaves 144 MiB free there, resident and reusable.
    # CI's history left such a heap: a later 64 MiB tensor raised RSS by nothing.
    torch.empty(20 * 1024 * 1024 // 4).fill_(1)
    blocks = [torch.ones(16 * 1024 * 1024 // 4) for _ in range(10)]
    return blocks[-1:]


@pytest.mark.parametrize("peak_class", [memory.HwmPeak, memory.SampledPeak])
def test_peak_memory_counts_heap_memory_freed_before_the_window(peak_class):
    """Both CPU peak methods count an allocation that reuses heap memory freed before the window."""
    if peak_class is memory.HwmPeak and not memory.reset_hwm():
        pytest.skip("the kernel's high-water mark cannot be reset here")
    if memory.MALLOC_TRIM is None:
        pytest.skip("no glibc malloc_trim: reused heap memory is invisible to RSS")
    kept = _leave_free_memory_resident_in_the_heap()
    peak = peak_class()
    peak.start()
    block = torch.ones(64 * 1024 * 1024 // 4)
    assert peak.peak_bytes() >= 48 * 1024 * 1024, peak.method
    del block, kept


def test_no_peak_window_overlaps_timed_iterations(monkeypatch, ctx_factory):
    """The peak window (any device's) opens once, after every timed chunk of the rounds has ended."""
    from harness.families import FAMILIES
    from harness.measure import case as case_module
    from harness.measure import footprint
    from harness.measure.workload import execute
    from harness.spec.matrix import expand

    events = []
    real_chunk = case_module.CaseRun.timed_chunk

    def chunk(self, indices):
        events.append("chunk")
        try:
            return real_chunk(self, indices)
        finally:
            events.append("chunk done")

    class Recorder:
        method = "recorder"

        def start(self):
            events.append("peak")

        def peak_bytes(self):
            return 0

    monkeypatch.setattr(case_module.CaseRun, "timed_chunk", chunk)
    monkeypatch.setattr(footprint, "make_peak", lambda device: Recorder())
    cases, _ = expand(FAMILIES["llama"], "tiny", ("float32",), "cpu", only_stacks=("eager",))
    assert execute(cases[0], ctx_factory(iterations=3, warmup=0), measure=True).status == "ok"
    assert events.count("peak") == 1 and events.count("chunk") == 3
    assert events.index("peak") > max(i for i, event in enumerate(events) if event == "chunk done")


def test_sampled_peak_sees_an_allocation_freed_before_the_window_ends():
    """The sampled peak sees an allocation that is freed before its window ends."""
    peak = memory.SampledPeak()
    peak.start()
    block = torch.ones(64 * 1024 * 1024 // 4)
    time.sleep(0.2)  # 200 sampling intervals: long enough even on a loaded machine
    del block
    assert peak.peak_bytes() >= 48 * 1024 * 1024


def test_cpu_peak_samples_where_the_high_water_mark_cannot_be_reset(monkeypatch, tmp_path):
    """Where the high-water mark cannot be reset, the CPU peak is sampled and stays out of timed iterations."""
    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    assert make_peak("cpu").method.startswith("rss_sampled")


def test_cpu_peak_samples_where_a_reset_is_silently_ignored(monkeypatch, tmp_path):
    """Where a high-water-mark reset is silently ignored, the CPU peak falls back to sampling."""
    block = torch.ones(64 * 1024 * 1024 // 4)  # raise the high-water mark above RSS...
    del block  # ...and drop RSS again
    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "clear_refs")  # writable, resets nothing
    if memory._status_bytes("VmHWM") - memory.rss_bytes() <= memory.RESET_SLACK_BYTES:
        pytest.skip("the allocator kept the freed block resident: no high-water gap to detect")
    assert make_peak("cpu").method.startswith("rss_sampled")
