"""Stages as phases: clock markers -> intervals, interleaved stages without double counting, the stage clock,
the profiled window and clock of a staged runner, the suites' profile check (synthetic timelines), and the
speed of light of Chameleon's decoder."""

import pytest
import torch
from transformers import ChameleonForConditionalGeneration

from harness.families.base import Output
from harness.families.chameleon.runner import ChameleonRunner
from harness.families.models import model_config
from harness.measure.profile.analysis import accounted_fracs, profile_problems, summarize
from harness.measure.profile.annotate import StageClock
from harness.measure.profile.categories import categorize
from harness.measure.profile.iteration import profile_clock_s, profile_window
from harness.measure.profile.sol import DecoderShape, SolView, decoder_views, layer_matmul_params
from harness.measure.profile.timeline import (
    DeviceSpan,
    HostEvent,
    Launch,
    device_work,
    interval_windows,
    marker_ranges,
    phase_ranges,
    phase_stats,
    self_work,
)
from harness.measure.profile.trace import Trace
from harness.options import RunOptions
from harness.spec.selection import select

MARK = "harness::mark::"


def markers(*pairs):
    """Instant marker ranges (the boundary is a marker's end): (time, phase) each, phase "" for the clock's start."""
    return [HostEvent(MARK + phase, time_s, time_s, is_op=False) for time_s, phase in pairs]


# A beam-search-like iteration: encoder, then per step reorder, decode (the step and its choice merge).
STEPS = markers((0.0, ""), (2.0, "encoder"), (3.0, "reorder"), (5.0, "decode"), (6.0, "reorder"), (9.0, "decode"))
OPS = [
    HostEvent("aten::conv1d", 0.5, 1.5), HostEvent("aten::index_select", 2.2, 2.8), HostEvent("aten::linear", 3.0, 4.0),
    HostEvent("aten::index_select", 5.5, 5.7), HostEvent("aten::linear", 6.0, 8.0),
]


def test_markers_make_interleaved_stages_unions_of_intervals():
    """Each span between clock markers belongs to the stage of the marker that ends it, so an interleaved stage
    is several intervals and the start marker's span counts to no stage."""
    found = {phase.phase: phase for phase in marker_ranges(STEPS)}
    assert list(found) == ["encoder", "reorder", "decode"]
    assert found["encoder"].spans() == ((0.0, 2.0),)
    assert found["reorder"].spans() == ((2.0, 3.0), (5.0, 6.0)) and found["reorder"].tokens == 2
    assert found["decode"].spans() == ((3.0, 5.0), (6.0, 9.0))
    assert found["decode"].holds(4.0) and not found["decode"].holds(5.5) and found["reorder"].interval_of(5.5) == 1
    warm_up = markers((-1.0, ""), (0.0, ""), (1.0, "encoder"))  # the clock's warm-up marker, then its start
    assert [(p.phase, p.spans()) for p in marker_ranges(warm_up)] == [("encoder", ((0.0, 1.0),))]


def test_consecutive_marks_of_one_stage_merge_into_one_interval():
    """Consecutive spans of one stage (a forward and the choice after it) merge into one interval."""
    events = markers((0.0, ""), (1.0, "prefill"), (2.0, "prefill"), (3.0, "decode"), (4.0, "decode"), (5.0, "decode"))
    found = {phase.phase: phase for phase in marker_ranges(events)}
    assert found["prefill"].spans() == ((0.0, 2.0),) and found["decode"].spans() == ((2.0, 5.0),)
    assert found["decode"].tokens == 3


def test_interleaved_stages_never_count_time_twice():
    """Interleaved stages' walls add up to the iteration, each stage's categories come from its own intervals
    only, and busy plus idle equals each stage's wall."""
    summary = summarize(Trace(STEPS + OPS, [], []))
    assert summary["profile_wall_s"] == pytest.approx({"encoder": 2.0, "reorder": 2.0, "decode": 5.0})
    assert sum(summary["profile_wall_s"].values()) == pytest.approx(9.0)  # a hull per stage would make it 13
    expected = {"encoder": {"conv": 1.0}, "reorder": {"kv_cache": 0.8}, "decode": {"linear": 3.0}}
    assert {phase: pytest.approx(found) for phase, found in expected.items()} == summary["breakdown"]
    assert summary["idle_frac"] == pytest.approx({"encoder": 0.5, "reorder": 0.6, "decode": 0.4})
    clock = {"encoder": 2.0, "reorder": 2.0, "decode": 5.0}
    assert accounted_fracs({**summary, "profile_clock_s": clock}) == pytest.approx({phase: 1.0 for phase in clock})


def test_phase_ranges_keep_one_interval_for_a_phase_that_runs_once():
    """Named phase ranges of one phase with no other between them stay one interval, gaps included, as the
    Llama loop's one decode range per token always did."""
    host = [HostEvent("harness::phase::prefill", 0.0, 1.0, is_op=False)] + [
        HostEvent("harness::phase::decode", 1.0 + i + 0.1, 2.0 + i, is_op=False) for i in range(3)]
    prefill, decode = phase_ranges(host)
    assert decode.spans() == ((1.1, 4.0),) and decode.tokens == 3 and prefill.spans() == ((0.0, 1.0),)
    stats = phase_stats([prefill, decode], self_work(host), lambda phase, chain: categorize(chain))
    assert stats["decode"].wall_s == pytest.approx(2.9)


def test_gpu_windows_of_interleaved_stages_follow_their_late_kernels():
    """On a GPU, a stage's window lasts until the kernels it launched end and the next stage's window starts
    there, so a late kernel moves time between stages without counting it twice."""
    host = markers((0.0, ""), (1.0, "decode"), (2.0, "reorder"), (3.0, "decode"))
    launches = [Launch("cudaLaunchKernel", 0.5, 1), Launch("cudaLaunchKernel", 1.5, 2), Launch("cudaLaunchKernel", 2.5, 3)]
    spans = [DeviceSpan("gemm", 0.6, 1.8, 1), DeviceSpan("index_select_kernel", 1.8, 1.9, 2), DeviceSpan("gemm", 2.6, 2.9, 3)]
    ranges = marker_ranges(host)
    work, _ = device_work(host, launches, spans)
    # decode's first gemm runs until 1.8: reorder's window starts there and ends with its host interval.
    assert interval_windows(ranges, work) == {"decode": [(0.0, 1.8), (2.0, 3.0)], "reorder": [(1.8, 2.0)]}
    stats = phase_stats(ranges, work, lambda phase, chain: categorize(chain))
    assert stats["decode"].busy_s == pytest.approx(1.5) and stats["reorder"].busy_s == pytest.approx(0.1)
    assert stats["decode"].wall_s + stats["reorder"].wall_s == pytest.approx(3.0)


def test_stage_clock_marks_each_stage_and_calls_back_once(monkeypatch):
    """The stage clock takes its start and every mark inside a marker range named by the mark's stage (none for a
    mark of no stage), after a warm-up marker, and calls back once after the first mark of the callback's name."""
    from contextlib import contextmanager

    from harness.measure.profile import annotate

    log = []

    @contextmanager
    def marker(name):
        log.append(f"enter {name.removeprefix(MARK)!r}")
        yield
        log.append("exit")

    class Inner:
        def start(self):
            log.append("start")

        def mark(self, name):
            log.append(f"mark {name}")

    monkeypatch.setattr(annotate, "FAST_RANGE", marker)
    clock = StageClock(Inner(), {"prefill": "prefill_s", "decode": "image_decode_s"}, {"prefill": lambda: log.append("unwrap")})
    clock.start()
    for name in ("prefill", "decode", "other", "prefill"):
        clock.mark(name)
    assert log == [
        "enter ''", "exit", "enter ''", "start", "exit", "enter 'prefill'", "mark prefill", "exit", "unwrap",
        "enter 'image_decode'", "mark decode", "exit", "enter ''", "mark other", "exit", "enter 'prefill'", "mark prefill",
        "exit",
    ]


def test_profile_window_caps_a_long_generation_and_says_so():
    """A runner's token cap shortens the profiled draw to its first tokens and records what was profiled; a
    shorter generation or no cap profiles all of it."""
    assert profile_window((16, 1024), 32) == ((16, 32), {"generated_tokens": 32, "of_generated_tokens": 1024, "steps": "first"})
    assert profile_window((16, 8), 32) == ((16, 8), {}) and profile_window((16, 1024), None) == ((16, 1024), {})


def test_profile_clock_of_a_staged_runner_is_its_stages():
    """A staged runner's profiled clock is its non-empty stages under their phase names; a runner without
    stages is split at the first token."""
    staged = Output(None, {"e2e_s": 3.0}, stages_s={"prefill_s": 1.0, "cfg_s": 0.5, "image_decode_s": 1.5, "vq_encode_s": 0.0})
    assert profile_clock_s(staged) == {"prefill": 1.0, "cfg": 0.5, "image_decode": 1.5}
    assert profile_clock_s(Output(None, {"ttft_s": 1.0, "e2e_s": 3.0})) == {"prefill": 1.0, "decode": 2.0}


def _record(**changes):
    record = {
        "status": "ok", "e2e_s": [1.0], "profile_notes": [], "profile_contended": "", "breakdown": {"a": {"linear": 0.5}},
        "idle_frac": {"a": 0.5}, "profile_wall_s": {"a": 1.0}, "profile_clock_s": {"a": 1.0}, "profile_reliable": {"a": True},
    }
    return {**record, **changes}


def test_profile_problems_name_what_the_suites_reject():
    """The suites' profile check passes a profile that accounts for its clock and names a missing profile, a
    stage the profile lacks, an empty stage and a stage off its clock by more than 5%."""
    assert profile_problems(_record()) == []
    assert "not profiled" in profile_problems(_record(breakdown={}))[0]
    assert profile_problems(_record(breakdown={}, e2e_s=[])) == []  # a quick check: nothing measured
    assert "not profiled" in profile_problems(_record(profile_clock_s={"a": 1.0, "b": 0.2}))[0]
    assert "categories {}" in profile_problems(_record(breakdown={"a": {}}, idle_frac={"a": 1.0}))[0]
    assert "account for 90.9%" in profile_problems(_record(profile_clock_s={"a": 1.1}))[0]
    assert profile_problems(_record(profile_clock_s={"a": 1.1}, profile_contended="busy")) == []


def test_fast_range_markers_parse_as_ranges_that_end_their_spans():
    """A marker the trace exports as an operator (a fast range) is read as a range on the profiled thread, and a
    stage's span ends where its marker range ends, the clock's stamp inside it."""
    from harness.measure.profile.trace import parse

    def event(name, ts_us, dur_us, tid=1):
        return {"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": tid, "ts": ts_us, "dur": dur_us}

    trace = parse({"traceEvents": [
        event("aten::mul", 0, 5, tid=2), event(MARK, 10, 4), event("aten::linear", 20, 50), event(MARK + "prefill", 80, 10),
    ]})
    assert [(e.name, e.is_op) for e in trace.host] == [(MARK, False), ("aten::linear", True), (MARK + "prefill", False)]
    (prefill,) = marker_ranges(trace.host)
    assert prefill.spans() == ((pytest.approx(14e-6), pytest.approx(90e-6)),)


def test_chameleon_speed_of_light_sees_the_decoder_alone():
    """Chameleon's speed of light counts every guidance stream's rows, the image tokens in the decoder's prompt,
    the prefill stage without the VQ encode and the decode stage without guidance, under the decode stage's name;
    and its decoder's weight count is the model's decoder parameters."""
    config = model_config("chameleon", "tiny")

    class Model:  # what the runner reads of its model: the config and the parameters' dtype
        def __init__(self) -> None:
            self.config = config

        def parameters(self):
            return iter([torch.zeros(1)])

    cases, _ = select(RunOptions(stacks="sdpa"), False).expand("chameleon")
    ti, it = (next(c for c in cases if f"-{task}-tiny" in c.id) for task in ("ti", "it"))
    samples = {"prompt_lens": [16], "gen_lens": [5], "ttft_s": [0.3], "tpot_s": [0.1, 0.1, 0.2, 0.1],
               "stages_s": {"prefill_s": [0.2], "cfg_s": [0.1], "image_decode_s": [0.4]}}
    ((plain, stages_s),) = decoder_views(samples, 1)
    assert plain == SolView(1, 16, 5, 0.3, pytest.approx(0.1)) and stages_s["image_decode_s"] == 0.4
    view = ChameleonRunner(ti, Model(), "cpu", 0).sol_view(plain, stages_s)
    assert (view.rows, view.prompt_len, view.prefill_s, view.per_token_s, view.decode_phase) == (3, 17, 0.2, 0.1, "image_decode")
    assert ChameleonRunner(it, Model(), "cpu", 0).decoder_prompt_len(8) == 8 + 256 + 2
    shape = DecoderShape.from_config(config)
    with torch.device("meta"):
        decoder = ChameleonForConditionalGeneration(config).model
    # Counted: the embedding (the LM head's count) and the decoder; left out: the VQ encoder and the qk norms.
    counted = sum(p.numel() for name, p in decoder.named_parameters()
                  if not name.startswith("vqmodel") and "q_norm" not in name and "k_norm" not in name)
    assert shape.layers * (layer_matmul_params(shape) + 2 * shape.hidden) + shape.hidden + shape.vocab * shape.hidden == counted
