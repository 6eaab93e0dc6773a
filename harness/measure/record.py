"""The record schema in one file: a case's result and the documented per-case keys it becomes
(docs/records.md), with the keys of the profiled iteration and of speculative decoding."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.families.speculative import acceptance_figures
from harness.spec.matrix import Case
from harness.spec.weights import weight_variant


@dataclass
class CaseResult:
    case: Case
    fingerprint: str
    device: str
    status: str = "ok"  # ok | mismatch | error | contended
    message: str = ""
    samples: dict = field(default_factory=dict)  # metric -> raw samples
    evidence: dict = field(default_factory=dict)
    outputs_match: bool | None = None
    peak_mem_bytes: int | None = None  # the footprint: the sum of peak_mem_parts (harness.measure.footprint)
    peak_mem_parts: dict = field(default_factory=dict)  # model_bytes, session_bytes, growth_bytes
    peak_mem_method: str = ""
    traceback: str = ""
    equivalence_note: str = ""  # set when outputs diverged only at a near-tie (runner.near_tie)
    profile: dict = field(default_factory=dict)  # PROFILE_KEYS from the profiled iteration
    agreement: dict = field(default_factory=dict)  # lossy stacks: harness.measure.equivalence.agreement
    tolerance: dict = field(default_factory=dict)  # lossy stacks: the stated Tolerance that gated it
    rounds: dict = field(default_factory=dict)  # how it was measured: harness.measure.rounds.summary
    cost_s: dict = field(default_factory=dict)  # the harness's own wall seconds on the case, by phase (costs)

    def to_record(self) -> dict:
        """The documented per-case keys (docs/records.md); also pytest-benchmark's extra_info."""
        return {**self._case_keys(), **self._sample_keys(), **self._outcome_keys()}

    def _case_keys(self) -> dict:
        case = self.case
        return {
            "id": case.id,
            "workload_id": case.workload_id,
            "fingerprint": self.fingerprint,
            "family": case.family,
            "task": case.task,
            "preset": case.preset,
            "stack": case.stack_name,
            "dtype": case.dtype,
            "device": self.device,
            "batch_size": case.batch_size,
            "prompt_len": case.lengths.prompt_len,
            "gen_len": case.lengths.gen_len,
            "length_dist": case.lengths.dist,
            "length_source": case.lengths.source,
            "items": case.items,
            "weights": weight_label(case.weights),
            "params": dict(case.params),
            "beams": case.beams,
        }

    def _sample_keys(self) -> dict:
        listed = ("ttft_s", "tpot_s", "e2e_s", "warmup_e2e_s", "first_call_s", "calibration_s", "prompt_lens", "gen_lens",
                  "round_index", "warmup_probe_s")
        found = {key: self.samples.get(key, []) for key in listed}
        found.update({key: self.samples.get(key, {}) for key in ("stages_s", "generated_tokens")})
        return {**found, "padding_frac": padding_frac(self.samples), **speculation_keys(self.samples)}

    def _outcome_keys(self) -> dict:
        return {
            "peak_mem_bytes": self.peak_mem_bytes,
            "peak_mem_parts": self.peak_mem_parts,
            "peak_mem_method": self.peak_mem_method,
            "evidence": self.evidence,
            "outputs_match": self.outputs_match,
            "equivalence_note": self.equivalence_note,
            "agreement": self.agreement,
            "tolerance": self.tolerance,
            "rounds": self.rounds,
            "cost_s": self.cost_s,
            "status": self.status,
            "message": self.message,
            "traceback": self.traceback,
            **{key: self.profile.get(key, default) for key, default in PROFILE_KEYS.items()},
        }


def costs(phase: str) -> Callable:
    """A CaseRun method's wall seconds, added to its result's cost_s[phase]: where a run's time
    goes outside the timed iterations too (builds, compiles in the check, warm-ups, the profile)."""
    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def timed(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                cost = self.result.cost_s
                cost[phase] = cost.get(phase, 0.0) + time.perf_counter() - started
        return timed
    return wrap


def weight_label(name: str) -> str:
    """The record's `weights`: "" for the run's own (random, or --checkpoint-dir), else the
    synthetic variant spelled out, so nobody mistakes its acceptance for a real model's."""
    return weight_variant(name).label() if name else ""


def padding_frac(samples: dict) -> float | None:
    """Over the timed iterations, the share of padding when each batch is padded to its longest
    row: 1 - real / padded tokens. Runners whose rows draw their own lengths (HSTU) report both
    per iteration; elsewhere every row of a batch has the iteration's one drawn length, so 0.0.
    None when nothing was timed."""
    real, padded = samples.get("real_tokens"), samples.get("padded_tokens")
    if real and padded:
        return 1.0 - sum(real) / sum(padded)
    return 0.0 if samples.get("prompt_lens") else None


# Speculative decoding (harness/families/speculative.py): per-round and per-iteration raw samples.
SPECULATION_SAMPLES = ("time_per_forward_s", "draft_s", "verify_s", "drafted_tokens", "accepted_tokens", "verify_forwards")


def speculation_keys(samples: dict) -> dict:
    """The samples, and acceptance_rate / mean_accepted_len over all timed iterations (None
    where nothing was drafted or the case was not measured)."""
    found = {key: samples.get(key, []) for key in SPECULATION_SAMPLES}
    figures = acceptance_figures(found["drafted_tokens"], found["accepted_tokens"], found["verify_forwards"])
    return {**found, **figures}


# Keys of the profiled iteration (docs/profiling.md), with their value when not profiled.
PROFILE_KEYS: dict[str, object] = {
    "breakdown": {}, "idle_frac": {}, "profile_wall_s": {}, "profile_clock_s": {}, "ops_per_token": None,
    "ops_unit": "", "top_ops": {}, "profile_reliable": {}, "profile_notes": [], "annotated": {},
    "sol_frac": {}, "device_peaks": {}, "trace_file": "", "hta": {}, "profile_contended": "",
    "profile_window": {},  # what of a long iteration was profiled ({}: all of it)
}
