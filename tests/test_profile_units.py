"""Pure parts of the profile: category table, timeline (idle, overlap, CUDA graphs), trace parsing, SoL counts."""

import pytest

from harness.families.models import count_parameters_on_meta, model_config
from harness.measure.profile.analysis import accounted_fracs, summarize
from harness.measure.profile.categories import CATEGORIES, RULES, categorize, category_range, decide, name_category
from harness.measure.profile.sol import DecoderShape, decode_bytes_per_step, layer_matmul_params, prefill_flops, sol_fracs
from harness.measure.profile.timeline import (
    DeviceSpan,
    HostEvent,
    Launch,
    PhaseRange,
    device_work,
    phase_stats,
    phase_windows,
    self_work,
    sweep,
    top_level_ops,
)
from harness.measure.profile.trace import parse

PRE, DEC = "harness::phase::prefill", "harness::phase::decode"


@pytest.mark.parametrize("name, category", [
    ("aten::linear", "linear"), ("aten::addmm", "linear"), ("aten::mm", "linear"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32", "linear"), ("ampere_sgemm_128x64_tn", "linear"),
    ("aten::scaled_dot_product_attention", "attention"), ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
    ("flash_fwd_splitkv_kernel", "attention"), ("aten::_softmax", "attention"), ("aten::bmm", "attention"),
    ("cunn_SoftMaxForward", "attention"), ("aten::layer_norm", "norm"), ("aten::rsqrt", "norm"),
    ("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0", "norm"), ("aten::silu", "elementwise"),
    ("aten::mul", "elementwise"), ("triton_poi_fused_mul_silu_0", "elementwise"),
    ("void at::native::vectorized_elementwise_kernel<4, ...>", "elementwise"),
    ("aten::embedding", "embedding"), ("aten::conv1d", "conv"), ("aten::cat", "kv_cache"),
    ("aten::index_copy_", "kv_cache"), ("aten::index_select", "kv_cache"), ("CatArrayBatchedCopy", "kv_cache"),
    ("aten::argmax", "sampling"), ("aten::topk", "sampling"), ("ncclDevKernel_AllReduce_Sum_bf16", "communication"),
    ("## Call CompiledFxGraph fnie63gemm4lzvs7conv ##", "fused"), ("Torch-Compiled Region: 0/0", "fused"),
    ("triton_tem_fused_0", "fused"),
])
def test_name_rules(name, category):
    """Each operator or kernel name falls into its category."""
    assert name_category(name) == category


def test_unknown_names_are_other_and_every_rule_names_a_known_category():
    """An unrecognised name is 'other', and every rule names a declared category."""
    assert name_category("aten::view") is None and categorize(("aten::view",)) == "other"
    assert {category for category, _ in RULES} <= set(CATEGORIES)


def test_outermost_recognised_name_decides():
    """The outermost recognised name in an op's chain decides its category, a GPU kernel's included."""
    assert categorize(("aten::linear", "aten::matmul", "aten::mm")) == "linear"
    assert categorize(("aten::matmul", "aten::bmm")) == "attention"  # eager attention's QK^T outside a linear
    assert categorize(("aten::embedding", "aten::index_select")) == "embedding"
    assert categorize(("aten::view", "aten::mean", "aten::sum")) == "elementwise"
    # A GPU kernel is named by the op that launched it before its own name.
    assert categorize(("aten::linear", "aten::addmm", "void elementwise_kernel")) == "linear"


def test_ranges_decide_and_demote():
    """A category range decides what runs inside it, a name no longer claims a category its phase annotates,
    and an unknown range is refused."""
    inside = (PRE, category_range("kv_cache"), "aten::cat")
    assert decide(inside, {"kv_cache"}) == ("kv_cache", "aten::cat")
    # RoPE's cat while the cache update was annotated is not KV-cache work.
    assert categorize((PRE, "aten::cat"), {"kv_cache"}) == "elementwise"
    assert categorize((PRE, "aten::cat")) == "kv_cache"  # no annotation in this phase: names only
    assert categorize((category_range("norm"), "aten::mul")) == "norm"
    with pytest.raises(ValueError):
        category_range("misc")


def test_wrapper_names_decide_only_when_nothing_inside_is_known():
    """A compiled region's wrapper name decides the category only when nothing inside it is recognised."""
    assert categorize(("Torch-Compiled Region: 0/0", "aten::_scaled_dot_product_flash_attention_for_cpu")) == "attention"
    assert categorize(("Torch-Compiled Region: 0/0", "## Call CompiledFxGraph f ##")) == "fused"


def test_sweep_shares_overlap_and_leaves_gaps_idle():
    """The sweep shares overlapping time between spans, clips them to the window, and leaves gaps out of busy
    time."""
    spans = [(0.0, 2.0, "linear"), (1.0, 3.0, "attention"), (5.0, 6.0, "norm"), (9.0, 12.0, "other")]
    busy, shares = sweep(spans, (0.0, 10.0))
    assert busy == pytest.approx(5.0)  # [0,3] + [5,6] + [9,10] (clipped)
    assert shares == pytest.approx({"linear": 1.5, "attention": 1.5, "norm": 1.0, "other": 1.0})
    assert sum(shares.values()) == pytest.approx(busy)


def test_self_work_and_top_level_ops_on_nested_host_ops():
    """Nested host ops give each op its self time with its call chain, and only the outermost ops are
    top-level."""
    events = [
        HostEvent(PRE, 0.0, 10.0, is_op=False),
        HostEvent("aten::linear", 1.0, 5.0), HostEvent("aten::mm", 2.0, 4.0),
        HostEvent("aten::mul", 6.0, 7.0),
    ]
    work = self_work(events)
    assert [(w.start_s, w.end_s, w.chain[-1]) for w in work] == [
        (1.0, 2.0, "aten::linear"), (4.0, 5.0, "aten::linear"), (2.0, 4.0, "aten::mm"), (6.0, 7.0, "aten::mul")]
    assert work[2].chain == (PRE, "aten::linear", "aten::mm")
    assert [e.name for e in top_level_ops(events)] == ["aten::linear", "aten::mul"]


def test_cpu_phase_stats_idle_is_time_outside_ops():
    """On the CPU a phase's idle fraction is its time outside ops, its ranges add up, and the accounted
    fraction compares the profile with the clock."""
    events = [
        HostEvent(PRE, 0.0, 10.0, is_op=False), HostEvent("aten::linear", 1.0, 5.0),
        HostEvent(DEC, 10.0, 14.0, is_op=False), HostEvent("aten::mul", 10.0, 11.0),
        HostEvent(DEC, 14.0, 20.0, is_op=False), HostEvent("aten::mul", 15.0, 16.0),
    ]
    from harness.measure.profile.trace import Trace

    summary = summarize(Trace(events, [], []))
    assert summary["breakdown"] == {"prefill": {"linear": 4.0}, "decode": {"elementwise": 2.0}}
    assert summary["idle_frac"] == pytest.approx({"prefill": 0.6, "decode": 0.8})
    assert summary["ops_per_token"] == 1.0 and summary["ops_unit"] == "host ops"
    record = {**summary, "profile_clock_s": {"prefill": 10.0, "decode": 10.5}}
    assert accounted_fracs(record) == pytest.approx({"prefill": 1.0, "decode": 10.0 / 10.5})


def _gpu_timeline(graph_kernels: bool):
    host = [
        HostEvent(PRE, 0.0, 4.0, is_op=False), HostEvent("aten::linear", 1.0, 2.0),
        HostEvent(DEC, 4.0, 6.0, is_op=False),
    ]
    launches = [Launch("cudaLaunchKernel", 1.5, 7), Launch("cudaGraphLaunch", 4.5, 8, is_graph=True)]
    spans = [DeviceSpan("sm80_gemm", 3.0, 5.0, 7)]  # runs late: still prefill's, launched there
    if graph_kernels:
        spans += [DeviceSpan("gemv", 6.0, 7.0, 8), DeviceSpan("flash_fwd", 6.5, 8.0, 8), DeviceSpan("memcpy", 9.0, 9.5, 8, "memcpy")]
    return host, launches, spans


def test_gpu_kernels_belong_to_their_launching_phase_and_graph_replays_count():
    """A GPU kernel belongs to the phase that launched it even when it runs later, and kernels replayed from a
    CUDA graph count towards their phase."""
    host, launches, spans = _gpu_timeline(graph_kernels=True)
    work, unresolved = device_work(host, launches, spans)
    assert unresolved == []
    assert work[0].chain == (PRE, "aten::linear", "sm80_gemm") and work[1].host_s == 4.5
    ranges = [PhaseRange("prefill", 0.0, 4.0, 1), PhaseRange("decode", 4.0, 6.0, 2)]
    assert phase_windows(ranges, work) == {"prefill": (0.0, 5.0), "decode": (5.0, 9.5)}
    stats = phase_stats(ranges, work, lambda phase, chain: categorize(chain))
    assert stats["prefill"].by_category_s == {"linear": 2.0} and stats["prefill"].idle_frac == pytest.approx(0.6)
    decode = stats["decode"]
    # [6,8] busy (overlap shared), [9,9.5] memcpy; idle [5,6] and [8,9] of a 4.5 s window.
    assert decode.busy_s == pytest.approx(2.5) and decode.idle_frac == pytest.approx(2.0 / 4.5)
    assert decode.by_category_s == pytest.approx({"linear": 0.75, "attention": 1.25, "other": 0.5})
    assert decode.kernels == 2 and decode.reliable  # two kernels replayed from one graph; the copy is no kernel


def test_graph_launch_without_kernels_makes_the_phase_unreliable_never_idle():
    """A CUDA graph launch whose kernels are missing makes its phase unreliable, with a note, rather than
    idle."""
    host, launches, spans = _gpu_timeline(graph_kernels=False)
    work, unresolved = device_work(host, launches, spans)
    assert [launch.correlation for launch in unresolved] == [8]
    ranges = [PhaseRange("prefill", 0.0, 4.0, 1), PhaseRange("decode", 4.0, 6.0, 2)]
    stats = phase_stats(ranges, work, lambda phase, chain: categorize(chain), unresolved_graph_launches=unresolved)
    assert stats["prefill"].reliable and stats["prefill"].idle_frac is not None
    assert not stats["decode"].reliable and stats["decode"].idle_frac is None
    assert "CUDA graph" in stats["decode"].notes[0]


def test_parse_reads_kineto_chrome_events():
    """The trace parser reads the profiled thread's host events, kernel launches and device kernels from
    Kineto's Chrome events."""
    pid, tid = 11, 22
    events = [
        {"ph": "X", "cat": "user_annotation", "name": PRE, "pid": pid, "tid": tid, "ts": 0, "dur": 100},
        {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": pid, "tid": tid, "ts": 10, "dur": 20},
        {"ph": "X", "cat": "cpu_op", "name": "aten::other_thread", "pid": pid, "tid": 99, "ts": 10, "dur": 20},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": pid, "tid": tid, "ts": 15, "dur": 2,
         "args": {"correlation": 5}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaGraphLaunch", "pid": pid, "tid": tid, "ts": 50, "dur": 2,
         "args": {"correlation": 6}},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 40, "dur": 30, "args": {"correlation": 5}},
        {"ph": "X", "cat": "gpu_user_annotation", "name": PRE, "pid": 0, "tid": 7, "ts": 40, "dur": 30},
        {"ph": "f", "cat": "ac2g", "name": "ac2g", "pid": 0, "tid": 7, "ts": 40},
    ]
    trace = parse({"traceEvents": events})
    assert [e.name for e in trace.host] == [PRE, "aten::linear"] and not trace.host[0].is_op
    assert [(launch.correlation, launch.is_graph) for launch in trace.launches] == [(5, False), (6, True)]
    assert [(d.name, d.start_s, d.end_s) for d in trace.device] == [("gemm", pytest.approx(40e-6), pytest.approx(70e-6))]
    summary = summarize(trace)
    assert summary["ops_unit"] == "launches" and summary["profile_reliable"] == {"prefill": False}


SMALL = DecoderShape(hidden=8, layers=2, heads=2, kv_heads=1, ffn=16, vocab=10)


def test_byte_and_flop_counts_by_hand():
    """Matmul parameters, decode bytes per step and prefill FLOPs of a small decoder match hand counts."""
    # q, o: 8x8 each; k, v: 8x4 each (1 kv head of dim 4); gate, up, down: 8x16 each.
    assert layer_matmul_params(SMALL) == 2 * 64 + 2 * 32 + 3 * 128 == 576
    # weights 2*(576 + 2 norms of 8) + final norm 8 + LM head 80 = 1272; embedding row 8;
    # KV read: 2 (k, v) * 2 layers * 1 head * 4 dims * 5 positions = 80; 1360 values of 2 bytes.
    assert decode_bytes_per_step(SMALL, 2, batch=1, context_len=5) == 2720
    # int8 linears (2 x 576 + LM head 80 = 1232 weights at 1 byte); norms 40, embedding 8, KV 80 stay at 2.
    assert decode_bytes_per_step(SMALL, 2, batch=1, context_len=5, linear_bytes=1) == 1232 + 2 * 128
    # 2*3 tokens*2 layers*576 = 6912; causal pairs 3*4/2 = 6: 4*2 layers*2 heads*4 dims*6 = 384; LM head 2*8*10 = 160.
    assert prefill_flops(SMALL, batch=1, prompt_len=3) == 6912 + 384 + 160
    assert prefill_flops(SMALL, batch=2, prompt_len=3) == 2 * 7456


@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_weight_count_matches_the_real_model(preset):
    """The speed-of-light weight count equals the real llama model's parameter count."""
    shape = DecoderShape.from_config(model_config("llama", preset))
    weights = shape.layers * (layer_matmul_params(shape) + 2 * shape.hidden) + shape.hidden + 2 * shape.vocab * shape.hidden
    assert weights == count_parameters_on_meta("llama", preset)  # untied embedding + LM head


def test_sol_fracs_divide_by_the_measured_peaks():
    """A speed-of-light fraction is the ideal time at the measured peak over the measured time, and one
    generated token has no decode fraction."""
    found = sol_fracs(SMALL, 2, 1, 3, 5, ttft_s=1.0, per_token_s=1.0, bandwidth_bytes_per_s=100.0, peak_flops_per_s=7456.0)
    # decode: mean context 3 + 5/2 = 5.5 -> 2 * (1272 + 8 + 16 * 5.5) = 2736 bytes per 1 s token.
    assert found == pytest.approx({"prefill": 1.0, "decode": 2736 / 100.0})
    assert sol_fracs(SMALL, 2, 1, 3, 1, 1.0, None, 1.0, 1.0).keys() == {"prefill"}


def test_phase_clock_opens_prefill_then_one_decode_range_per_token():
    """The phase clock opens a prefill range and then one decode range per token, calling back when prefill
    ends."""
    from harness.measure.profile.annotate import PhaseClock

    log = []

    class Inner:
        def start(self):
            log.append("start")

        def mark(self):
            log.append("mark")

        def elapsed_s(self):
            return [1.0, 2.0, 3.0]

    class Ranges:
        def enter(self, name):
            log.append(name)

        def exit(self):
            log.append("exit")

    clock = PhaseClock(Inner(), max_marks=3, on_prefill_end=lambda: log.append("prefill done"))
    clock._ranges = Ranges()
    clock.start()
    for _ in range(3):
        clock.mark()
    assert clock.elapsed_s() == [1.0, 2.0, 3.0]
    assert log == [
        "start", PRE, "mark", "exit", "prefill done", DEC, "mark", "exit", DEC, "mark", "exit", "exit",
    ]
