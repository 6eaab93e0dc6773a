"""The measuring path (warm-up, profiled iteration, timed loop, speed of light) for every
family's runner: what `pytest suites/ --benchmark` runs, on one tiny baseline case each."""

import pytest

from harness.families import FAMILIES
from harness.measure.workload import execute
from harness.spec.matrix import expand


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_baseline_case_of_every_family_measures(family, ctx_factory):
    """Every family's tiny baseline case goes through the measuring path and records matching outputs and one
    sample per iteration."""
    cases, _ = expand(FAMILIES[family], "tiny", ("float32",), "cpu", only_stacks=("+".join(FAMILIES[family].baseline),))
    result = execute(cases[0], ctx_factory(iterations=2, warmup=0), measure=True)
    assert result.status == "ok", f"{cases[0].id}: {result.message}\n{result.traceback}"
    record = result.to_record()
    assert len(record["e2e_s"]) == 2 and record["outputs_match"]
    phases = {"build", "check", "timed", "peak", "profile", "evidence"}
    assert phases <= set(record["cost_s"]) and all(seconds >= 0 for seconds in record["cost_s"].values())
    assert record["cost_s"]["timed"] >= sum(record["e2e_s"]), "the timed phase holds the timed iterations"


def test_a_sampled_peak_is_measured_outside_the_timed_iterations(monkeypatch, tmp_path, ctx_factory):
    """Without a resettable high-water mark the peak is sampled in an iteration of its own after the timed
    ones and is still reported."""
    # Where the kernel's high-water mark cannot be reset (some CI sandboxes), the sampling
    # thread must not run during timed iterations, yet the case still reports a peak.
    from harness.measure import memory

    monkeypatch.setattr(memory, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")  # a folder that is not there: the write fails
    cases, _ = expand(FAMILIES["llama"], "tiny", ("float32",), "cpu", only_stacks=("eager",))
    progress: list[str] = []
    ctx = ctx_factory(iterations=2, warmup=0)
    monkeypatch.setattr(ctx, "progress", progress.append)
    record = execute(cases[0], ctx, measure=True).to_record()
    assert record["peak_mem_method"].startswith("tensors+rss_sampled")
    assert isinstance(record["peak_mem_bytes"], int)  # a lower bound: a short spike can fall between samples
    assert progress.index(f"{cases[0].id}: peak-memory iteration") > progress.index(f"{cases[0].workload_id}: round 2 (schedule 2/2)")


def test_a_high_water_mark_peak_is_measured_outside_the_timed_iterations(monkeypatch, ctx_factory):
    """With a resettable high-water mark the peak is a positive high-water delta taken in an iteration of its
    own after the timed ones."""
    # The heap release before a CPU peak costs page faults: it must not land in a timed sample.
    from harness.measure import memory

    if not memory.reset_hwm():
        pytest.skip("the kernel's high-water mark cannot be reset here")
    cases, _ = expand(FAMILIES["llama"], "tiny", ("float32",), "cpu", only_stacks=("eager",))
    progress: list[str] = []
    ctx = ctx_factory(iterations=2, warmup=1)
    monkeypatch.setattr(ctx, "progress", progress.append)
    record = execute(cases[0], ctx, measure=True).to_record()
    assert record["peak_mem_method"] == "tensors+rss_hwm_delta"
    assert record["peak_mem_parts"]["growth_bytes"] > 0  # the freed heap was handed back: the iteration's own memory counts
    assert progress.index(f"{cases[0].id}: peak-memory iteration") > progress.index(f"{cases[0].workload_id}: round 2 (schedule 2/2)")
