"""The CUDA paths of the clock, the peak-memory reader and the run context, on the CPU through a fake
torch.cuda (tests/fake_cuda.py): what they call, on which device, and that timed marks stay cheap."""

import pytest

from harness.cli import parser
from harness.measure.case import RunContext
from harness.measure.clock import CudaClock, make_clock
from harness.measure.memory import CudaPeak
from harness.options import RunOptions
from harness.smoke import command
from harness.smoke.base import Check, SmokeContext, judge
from harness.smoke.timing import check_clock
from tests.fake_cuda import FakeCuda


@pytest.fixture
def cuda(monkeypatch):
    return FakeCuda().install(monkeypatch)


def test_cuda_n_becomes_the_current_device_at_run_start(cuda):
    """--device cuda:1: the run context sets device 1 current, so events, syncs and capture land there."""
    RunContext(RunOptions(), "cuda:1")
    assert ("set_device", (1,)) in cuda.calls


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_plain_cuda_and_the_cpu_leave_the_current_device(cuda, device):
    """Without an index there is nothing to select: the current device stays as it is."""
    RunContext(RunOptions(), device)
    assert "set_device" not in cuda.names()


def test_smoke_sets_its_cuda_n_current(cuda):
    """`harness smoke --device cuda:1` checks device 1, not device 0."""
    args = parser().parse_args(["smoke", "--device", "cuda:1"])
    assert command.smoke_device(args) == "cuda:1"
    assert ("set_device", (1,)) in cuda.calls


def test_cuda_events_exist_before_timing_and_marks_neither_sync_nor_create(cuda):
    """Every event is created (first record) when the clock is made; a mark only records, never
    synchronizes; start synchronizes once and reading the times waits on the last event once."""
    clock = make_clock("cuda", 4)
    assert isinstance(clock, CudaClock)
    assert len(cuda.events) == 5 and all(event.created for event in cuda.events)
    cuda.calls.clear()
    clock.start()
    for name in ("prefill", "decode", "decode"):
        clock.mark(name)
    assert cuda.names() == ["synchronize", "record", "record", "record", "record"]
    marks = clock.marks()
    assert cuda.names().count("event_synchronize") == 1
    assert marks.names == ("prefill", "decode", "decode")
    assert all(b >= a >= 0 for a, b in zip(marks.seconds, marks.seconds[1:], strict=False))


def test_the_cuda_peak_reads_the_allocator_of_its_own_device(cuda):
    """CudaPeak resets and reads the allocator of the device it was made for, not the current one,
    and gives the growth above what was allocated at its start."""
    cuda.allocated_bytes, cuda.peak_bytes = 1 * 2**20, 3 * 2**20
    peak = CudaPeak("cuda:1")
    peak.start()
    assert peak.peak_bytes() == 2 * 2**20
    assert cuda.calls == [("reset_peak_memory_stats", ("cuda:1",)), ("memory_allocated", ("cuda:1",)),
                          ("max_memory_allocated", ("cuda:1",))]


def test_the_smoke_clock_check_passes_on_the_cuda_clock(cuda, tmp_path):
    """The smoke run's clock check, on the (fake) CUDA clock: host sleeps read as their length."""
    found = check_clock(SmokeContext("cuda", "bfloat16", tmp_path))
    assert found.passed, found.detail


def test_graph_replay_over_the_real_static_cache_gives_the_eager_tokens(monkeypatch, tmp_path):
    """GraphedStep over transformers' real StaticCache, with a fake graph that replays the captured ops:
    sdpa+static+cudagraphs chooses the very tokens of sdpa+static at both smoke prompt lengths (the
    smoke run's own check), and the captured step makes no host sync."""
    from harness.smoke.decoding import check_graph_replay
    from tests.fake_cuda import install_fake_graphs

    install_fake_graphs(monkeypatch)
    found = check_graph_replay(SmokeContext("cpu", "float32", tmp_path))
    assert found.passed, found.detail
    assert all(figures["captures"] == 1 for figures in found.figures.values())


@pytest.mark.parametrize("breakage", ["no_rewind", "no_replay"])
def test_the_fake_graph_catches_a_broken_capture(monkeypatch, tmp_path, breakage):
    """The fake is strict enough to matter: without the cache-position rewind after the warm-up calls, or
    with a replay that runs nothing (an empty graph, as on the wrong device), the check fails (tokens differ,
    or the cache is written past its end)."""
    from harness.levers import cudagraphs
    from harness.smoke.decoding import check_graph_replay
    from tests.fake_cuda import FakeGraph, install_fake_graphs

    install_fake_graphs(monkeypatch)
    if breakage == "no_rewind":
        monkeypatch.setattr(cudagraphs, "_cache_counters", lambda cache: [])
    else:
        monkeypatch.setattr(FakeGraph, "replay", lambda self: None)
    check = Check("graph_replay", "", check_graph_replay, cpu=True)
    assert judge(check, SmokeContext("cpu", "float32", tmp_path)).status == "fail"


def test_device_peaks_on_cuda_are_timed_by_events_over_back_to_back_calls(cuda):
    """On CUDA each peak timing is two events around back-to-back calls, synchronized once before and read
    once after: no host timer with its launch and sync latency in a sub-millisecond copy."""
    import time

    from harness.measure.profile import peaks

    calls = []
    per_call_s = peaks._best(lambda: (calls.append(1), time.sleep(0.001)), "cuda")
    assert len(calls) == 1 + peaks.REPEATS * peaks.BACK_TO_BACK["cuda"]  # one warm-up call, then the timings
    assert 0.001 <= per_call_s < 0.01
    assert cuda.names().count("synchronize") == peaks.REPEATS
    assert cuda.names().count("event_synchronize") == peaks.REPEATS
