"""One case's pieces of work: build, apply levers, check outputs, warm up, run timed chunks,
profile, peak memory. Raw samples out. The order and interleaving of the chunks of a workload's
cases is harness.measure.workload's; the library knows nothing of pytest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analyse.stats import median
from harness.errors import HarnessError
from harness.families import family_spec
from harness.families.base import Output
from harness.families.models import ModelCache, checkpoint_identity, family_models
from harness.lazy import resolve
from harness.levers import LEVERS, Tolerance, stack_tolerance
from harness.levers.plan import plan_for
from harness.levers.quantize_model import scheme as quant_scheme
from harness.measure.calibration import probe_s
from harness.measure.equivalence import agreement
from harness.measure.footprint import measure_footprint
from harness.measure.profile.analysis import DEVICE_OPS_UNIT
from harness.measure.profile.capture import hta_idle_frac, profile_iteration
from harness.measure.profile.iteration import profile_clock_s, profile_window
from harness.measure.profile.peaks import measure_peaks
from harness.measure.profile.sol import BYTES_PER_DTYPE, SolInput
from harness.measure.profile.trace import trace_file_name
from harness.measure.record import CaseResult, costs
from harness.measure.rounds import Guard
from harness.options import RunOptions
from harness.spec.matrix import Case, fingerprint
from harness.store.records import check_finite

PROFILE_TAKES = 3  # a profile disturbed by the machine is taken again, up to this many takes in all

@dataclass
class RunContext:
    """What cases of one run share: options, the device, the built model, expected outputs."""

    options: RunOptions
    device: str
    models: ModelCache = field(default_factory=ModelCache)
    references: dict = field(default_factory=dict)
    peaks: dict = field(default_factory=dict)  # dtype -> this device's measured peaks, once per run
    progress: Callable[[str], None] = lambda message: None
    on_case: Callable[[str], None] = lambda case_id: None  # the case whose work starts (--isolate names a crash's case by it)
    quiet_probe_s: float | None = None  # the quietest machine-speed reference of the run so far (harness.measure.workload)

    def __post_init__(self) -> None:
        use_device(self.device)


def use_device(device: str) -> None:
    """Make `cuda:N` the current CUDA device for the rest of the process. Events, streams,
    synchronize, graph capture and the peak timers use the current device when given none, so
    without this a model on cuda:1 would be timed and captured on device 0 (empty graphs, near-zero
    times). Plain `cuda` and the CPU leave the current device as it is."""
    kind, _, index = device.partition(":")
    if kind == "cuda" and index:
        import torch

        torch.cuda.set_device(int(index))


def linear_weight_bytes(session) -> float | None:
    """Bytes per linear weight of the session's quantized model (None: it runs the float model)."""
    quantized = getattr(session, "quantized", None)
    return quant_scheme(quantized.scheme).weight_bytes if quantized is not None else None


def merge_samples(samples: dict, output: Output) -> None:
    """Append one iteration's raw times: a float is one sample, a list several."""
    check_finite({"metrics": output.metrics, "stages_s": output.stages_s})  # reject NaN/inf where they arise
    for metric, value in output.metrics.items():
        target = samples.setdefault(metric, [])
        target.extend(value) if isinstance(value, list) else target.append(value)
    for stage, seconds in output.stages_s.items():
        samples.setdefault("stages_s", {}).setdefault(stage, []).append(seconds)
    for kind, count in output.generated_tokens.items():
        samples.setdefault("generated_tokens", {}).setdefault(kind, []).append(count)


def case_fingerprint(case: Case, options: RunOptions) -> str:
    """The case's identity across runs: its cell, its preset's config, the checkpoint's identity
    and the family's measurement version (harness.spec.matrix.fingerprint)."""
    preset_config = family_models(case.family).presets[case.preset]
    return fingerprint(case, {**preset_config, **checkpoint_identity(options.checkpoint_dir)},
                       family_spec(case.family).measurement_version)


def quantizes(case: Case) -> bool:
    return any(LEVERS.get(name).slot == "quantization" for name in case.stack)


class CaseRun:
    def __init__(self, case: Case, ctx: RunContext, keep_float: bool = True) -> None:
        """`keep_float`: other cases need the float model while this one runs (a workload's stacks
        kept warm together), so a quantized stack quantizes a copy of it; False: a quantized stack
        takes the model from the cache and quantizes it in place (no float copy beside it)."""
        started = time.perf_counter()
        self.case = case
        self.ctx = ctx
        options = ctx.options
        key = (case.family, case.preset, case.dtype, ctx.device, options.seed, options.checkpoint_dir, case.weights)
        owned = quantizes(case) and not keep_float
        model = ctx.models.take(*key) if owned else ctx.models.get(*key)
        self.spec = family_spec(case.family)
        self.runner = resolve(self.spec.runner)(case, model, ctx.device, options.seed)
        self.runner.owns_model = owned  # its baseline reference (check) runs before the stack's session quantizes it
        self.model = model
        self.draws = case.lengths.draws(options.iterations, options.seed)
        self.result = CaseResult(case, case_fingerprint(case, options), ctx.device)
        self.result.cost_s["build"] = time.perf_counter() - started
        self.session: Any = None  # the runner's session for the stack being run (each family has its own class)

    def _run(self, draw: tuple[int, int]) -> Output:
        self.session.activate()  # sessions of one model take turns (the attention implementation is the model's)
        return self.runner.run(self.session, self.runner.inputs(draw))

    def _reference(self, draw: tuple[int, int]):
        """The baseline stack's output for this workload, computed once per run (None for the baseline)."""
        if self.case.stack == self.spec.baseline:
            return None
        key = (self.case.workload_id, *draw)
        if key not in self.ctx.references:
            self.session = self.runner.session(plan_for(self.spec.baseline))
            self.ctx.references[key] = self._run(draw).value
        return self.ctx.references[key]

    # -- phases -------------------------------------------------------------------------
    @costs("check")
    def check(self, draw: tuple[int, int]) -> bool:
        """Run once with the case's stack and compare with the baseline stack's output."""
        reference = self._reference(draw)
        self.session = self.runner.session(plan_for(self.case.stack, self.case.params))
        self.ctx.progress(f"{self.case.id}: output check (lengths {draw[0]}, {draw[1]})")
        started = time.perf_counter()
        value = self._run(draw).value
        self.result.samples["first_call_s"] = [time.perf_counter() - started]
        if reference is None:
            key = (self.case.workload_id, *draw)
            self.ctx.references[key] = value
            self.result.outputs_match = True
            return True
        tolerance = stack_tolerance(self.case.stack)
        if tolerance is not None:
            return self.check_tolerance(reference, value, draw, tolerance)
        mismatch = self.runner.compare(reference, value)
        tie = getattr(self.runner, "near_tie", None)
        note = tie(reference, value, draw, self.session) if mismatch and tie else None
        self.session.activate()  # a tie check runs the baseline's session on the shared model: this stack's back
        if note:  # the two stacks' tokens differ only where the model's top choices tie
            self.result.equivalence_note, mismatch = note, None
        self.result.outputs_match = mismatch is None
        if mismatch:
            self.result.status, self.result.message = "mismatch", mismatch.describe()
        return mismatch is None

    def check_tolerance(self, reference, value, draw: tuple[int, int], tolerance: Tolerance) -> bool:
        """A lossy stack (quantization): agreement with the baseline's output, to the lever's
        stated tolerance; below it the case fails exactly like a mismatch."""
        forced = getattr(self.runner, "forced_scores", None)
        if forced is None:
            raise HarnessError(f"{type(self.runner).__name__} has no forced_scores: it cannot check a lossy lever's outputs")
        found = agreement(reference, value, forced(self.session, self.runner.inputs(draw), reference))
        self.result.agreement = found
        self.result.tolerance = {"metric": tolerance.metric, "minimum": tolerance.minimum, "why": tolerance.why}
        passed = found[tolerance.metric] >= tolerance.minimum
        self.result.outputs_match = passed
        text = f"{tolerance.metric} {found[tolerance.metric]:.3f} over {found['positions']} positions"
        if passed:
            self.result.equivalence_note = f"lossy stack within tolerance: {text} >= {tolerance.minimum}"
        else:
            self.result.status = "mismatch"
            self.result.message = f"outputs outside the stated tolerance: {text} < {tolerance.minimum} ({tolerance.why})"
        return passed

    @costs("warmup")
    def warmup(self) -> None:
        # Alternate the longest and the shortest draw, so compile sees the extreme shapes before timing.
        longest, shortest = max(self.draws, key=sum), min(self.draws, key=sum)
        picks = [(longest, shortest)[index % 2] for index in range(self.ctx.options.warmup)]
        times, probes = [], []
        for index, draw in enumerate(picks, 1):
            self.ctx.progress(f"{self.case.id}: warm-up {index}/{len(picks)}")
            probes += probe_s(1)
            times.append(self._run(draw).metrics["e2e_s"])
        self.result.samples["warmup_e2e_s"] = times
        self.result.samples["warmup_probe_s"] = probes

    def warmup_probe(self) -> list[float]:
        """The machine-speed probe readings taken before each warm-up run (the guard's reference)."""
        return self.result.samples.get("warmup_probe_s", [])

    @costs("timed")
    def timed_chunk(self, indices: range) -> list[tuple[tuple[int, int], Output]]:
        """Run the iterations `indices` of the case's draws in the session's timed guard (compile:
        no recompile), inputs made before it; the raw outputs, not yet merged into the samples."""
        prepared = [(self.draws[index], self.runner.inputs(self.draws[index])) for index in indices]
        self.session.activate()
        with self.session.timed():
            return [(draw, self.runner.run(self.session, inputs)) for draw, inputs in prepared]

    def absorb(self, round_index: int, probe_s: float, outputs: list[tuple[tuple[int, int], Output]]) -> None:
        """Merge one round's outputs into the samples, in round order, with the probe that preceded them."""
        samples = self.result.samples
        for draw, output in outputs:
            merge_samples(samples, output)
            # calibration_s: one per iteration, the probe run right before its chunk (the gate's per-iteration normalization)
            for key, value in (("prompt_lens", draw[0]), ("gen_lens", draw[1]), ("round_index", round_index),
                               ("calibration_s", probe_s)):
                samples.setdefault(key, []).append(value)

    @costs("peak")
    def measure_peak(self) -> None:
        """The case's memory footprint over one extra, untimed iteration of the longest draw
        (harness.measure.footprint): no peak window ever overlaps the timed iterations (a CPU peak
        releases the free heap first, a sampled one runs a thread; docs/rounds.md)."""
        self.ctx.progress(f"{self.case.id}: peak-memory iteration")
        found = measure_footprint(self.session, lambda: self._run(max(self.draws, key=sum)), self.ctx.device)
        self.result.peak_mem_bytes = found.total_bytes
        self.result.peak_mem_parts = found.parts()
        self.result.peak_mem_method = found.method

    @costs("profile")
    def profile(self, draw: tuple[int, int], guard: Guard | None = None) -> None:
        """One profiled iteration, apart from the timed samples (their loop never sees the profiler).

        Inside the session's timed guard: if profiling made compile recompile, the profile would
        describe other code than was timed, and the case fails. With a contention `guard`, a
        profile whose bracketing probes read a busy machine is taken again (PROFILE_TAKES in all);
        one that stays disturbed is kept and marked (`profile_contended`), never failing the case."""
        if not getattr(self.runner, "profiles", False):
            # Only runners that mark their phases (run(..., annotate=True)) can be split by phase.
            self.result.profile["profile_notes"] = [f"{type(self.runner).__name__} has no profiled iteration yet"]
            return
        draw, window = profile_window(draw, getattr(self.runner, "profile_tokens", None))
        reason = ""
        for take in range(1, PROFILE_TAKES + 1):
            self.ctx.progress(f"{self.case.id}: profiled iteration" + (f" (take {take}: {reason})" if reason else ""))
            probes = probe_s(1)
            summary = self._profile_once(draw)
            reason = guard.reason(probes + probe_s(1)) if guard else ""
            if not reason:
                break
        if reason:
            summary["profile_notes"] = [*summary.get("profile_notes", []),
                                        f"profile disturbed by the machine in all {PROFILE_TAKES} takes: {reason}"]
        summary["profile_contended"] = reason
        summary["profile_window"] = window
        self.result.profile.update(summary)

    def _profile_once(self, draw: tuple[int, int]) -> dict:
        trace_dir = self.ctx.options.trace_dir
        trace_path = Path(trace_dir) / trace_file_name(self.case.id) if trace_dir else None
        inputs = self.runner.inputs(draw)
        self.session.activate()
        with self.session.timed():
            summary, output = profile_iteration(
                lambda: self.runner.run(self.session, inputs, annotate=True), self.ctx.device, trace_path
            )
        summary["profile_clock_s"] = profile_clock_s(output)
        if trace_path is not None:
            summary["trace_file"] = str(trace_path)
            if summary["ops_unit"] == DEVICE_OPS_UNIT:  # a device trace: HTA reads its kernels
                summary["hta"] = hta_idle_frac(trace_path)
        return summary

    @costs("sol")
    def speed_of_light(self) -> None:
        """sol_frac per phase from the timed samples (median over iterations) and this run's peaks."""
        family_sol = resolve(self.spec.sol) if self.spec.sol else None
        samples = self.result.samples
        if family_sol is None or not samples.get("e2e_s"):
            return
        dtype = self.case.dtype
        if dtype not in self.ctx.peaks:
            self.ctx.progress(f"measuring this device's peaks ({dtype})")
            self.ctx.peaks[dtype] = measure_peaks(self.ctx.device, dtype)
        peaks = self.ctx.peaks[dtype]
        per_iteration = family_sol(SolInput(
            self.runner, samples, BYTES_PER_DTYPE[dtype], linear_weight_bytes(self.session),
            peaks["mem_bw_bytes_per_s"], peaks["matmul_flops_per_s"],
        ))
        self.result.profile["sol_frac"] = {phase: median(fracs) for phase, fracs in per_iteration.items() if fracs}
        self.result.profile["device_peaks"] = peaks

    @costs("evidence")
    def collect_evidence(self) -> None:
        self.result.evidence = {name: LEVERS.get(name).evidence(self.session) for name in self.case.stack}
