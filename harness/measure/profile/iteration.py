"""What the profiled iteration runs and the clock it is checked against: the window of a long
generation that is profiled, and the iteration's own seconds per phase (harness.measure.case)."""

from __future__ import annotations

from harness.families.base import Output
from harness.measure.profile.annotate import stage_phase


def profile_clock_s(output: Output) -> dict[str, float]:
    """The profiled iteration's own clock per phase: a staged runner's stages (the phases its
    clock's markers name, harness.measure.profile.annotate.stage_phase), else prefill and decode."""
    if output.stages_s:
        return {stage_phase(stage): seconds for stage, seconds in output.stages_s.items() if seconds > 0}
    ttft_s, e2e_s = output.metrics["ttft_s"], output.metrics["e2e_s"]
    return {"prefill": ttft_s, "decode": e2e_s - ttft_s}


def profile_window(draw: tuple[int, int], cap_tokens: int | None) -> tuple[tuple[int, int], dict]:
    """The draw the profiled iteration runs, and what the record says of it: a runner's
    `profile_tokens` caps a long generation (Chameleon's 1024 image tokens: under the profiler
    each costs ~15x its timed time, and a whole image makes a trace of ~300k events) to its first tokens, the same
    steps as the full iteration's first ones (greedy decoding with no stop)."""
    prompt_len, gen_len = draw
    if cap_tokens is None or gen_len <= cap_tokens:
        return draw, {}
    return (prompt_len, cap_tokens), {"generated_tokens": cap_tokens, "of_generated_tokens": gen_len, "steps": "first"}
