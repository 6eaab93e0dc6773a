"""Running one case: build, apply levers, check outputs, warm up, measure. Raw samples out.

The timed loop is handed to a `loop_runner` so that the pytest plugin can route it through
pytest-benchmark; the library itself knows nothing of pytest.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from harness.clock import make_clock
from harness.equivalence import first_mismatch
from harness.families import family_spec
from harness.levers import LEVERS
from harness.matrix import Case, fingerprint
from harness.memory import make_peak
from harness.models import ModelCache, family_models
from harness.options import RunOptions
from harness.runners.decoder import DecodePlan, DecoderSession, decode_positions, generate
from harness.stats import decode_intervals
from harness.workload import prompt_ids

LoopRunner = Callable[[Callable[[], None], int], None]


def plain_loop(iteration: Callable[[], None], rounds: int) -> None:
    for _ in range(rounds):
        iteration()


@dataclass
class RunContext:
    """What cases of one run share: options, the device, the built model, expected outputs."""

    options: RunOptions
    device: str
    models: ModelCache = field(default_factory=ModelCache)
    references: dict = field(default_factory=dict)
    progress: Callable[[str], None] = lambda message: None


@dataclass
class CaseResult:
    case: Case
    fingerprint: str
    device: str
    status: str = "ok"  # ok | mismatch | error
    message: str = ""
    samples: dict = field(default_factory=dict)  # metric -> raw samples
    evidence: dict = field(default_factory=dict)
    outputs_match: bool | None = None
    peak_mem_bytes: int | None = None
    peak_mem_method: str = ""
    traceback: str = ""

    def to_record(self) -> dict:
        """The documented per-case keys (README, "JSON keys"); also pytest-benchmark's extra_info."""
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
            "ttft_s": self.samples.get("ttft_s", []),
            "tpot_s": self.samples.get("tpot_s", []),
            "e2e_s": self.samples.get("e2e_s", []),
            "warmup_e2e_s": self.samples.get("warmup_e2e_s", []),
            "first_call_s": self.samples.get("first_call_s", []),
            "prompt_lens": self.samples.get("prompt_lens", []),
            "gen_lens": self.samples.get("gen_lens", []),
            "peak_mem_bytes": self.peak_mem_bytes,
            "peak_mem_method": self.peak_mem_method,
            "evidence": self.evidence,
            "outputs_match": self.outputs_match,
            "status": self.status,
            "message": self.message,
            "traceback": self.traceback,
        }


def plan_for(stack: tuple[str, ...]) -> DecodePlan:
    plan = DecodePlan()
    for name in stack:
        plan = LEVERS.get(name).configure(plan)
    return plan


class CaseRun:
    def __init__(self, case: Case, ctx: RunContext) -> None:
        self.case = case
        self.ctx = ctx
        options = ctx.options
        self.model = ctx.models.get(case.family, case.preset, case.dtype, ctx.device, options.seed, options.checkpoint_dir)
        self.draws = case.lengths.draws(options.iterations, options.seed)
        preset_config = family_models(case.family).presets[case.preset]
        self.result = CaseResult(case, fingerprint(case, preset_config), ctx.device)
        self.session: DecoderSession | None = None

    # -- pieces -------------------------------------------------------------------------
    def _inputs(self, prompt_len: int, gen_len: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        ids = prompt_ids(self.case.batch_size, prompt_len, self.model.config.vocab_size, self.ctx.options.seed)
        ids = ids.to(self.ctx.device)
        return ids, decode_positions(self.case.batch_size, prompt_len, gen_len, self.ctx.device)

    def _session(self, stack: tuple[str, ...]) -> DecoderSession:
        max_len = self.case.lengths.max_total_len()
        return DecoderSession(self.model, plan_for(stack), self.case.batch_size, max_len)

    def _generate(self, prompt_len: int, gen_len: int):
        ids, positions = self._inputs(prompt_len, gen_len)
        return generate(self.session, ids, positions, make_clock(self.ctx.device, gen_len))

    def _reference(self, prompt_len: int, gen_len: int) -> torch.Tensor | None:
        """Baseline-stack tokens for this workload, computed once per run (None for the baseline)."""
        baseline = family_spec(self.case.family).baseline
        if self.case.stack == baseline:
            return None
        key = (self.case.workload_id, prompt_len, gen_len)
        if key not in self.ctx.references:
            self.session = self._session(baseline)
            self.ctx.references[key] = self._generate(prompt_len, gen_len).tokens
        return self.ctx.references[key]

    # -- phases -------------------------------------------------------------------------
    def check(self, gen_len: int) -> bool:
        """Generate once with the case's stack and compare with the baseline stack."""
        prompt_len = self.draws[0][0]
        reference = self._reference(prompt_len, gen_len)
        self.session = self._session(self.case.stack)
        self.ctx.progress(f"{self.case.id}: output check ({gen_len} tokens)")
        started = time.perf_counter()
        tokens = self._generate(prompt_len, gen_len).tokens
        self.result.samples["first_call_s"] = [time.perf_counter() - started]
        if reference is None:
            self.ctx.references[(self.case.workload_id, prompt_len, gen_len)] = tokens
            self.result.outputs_match = True
            return True
        mismatch = first_mismatch(reference, tokens)
        self.result.outputs_match = mismatch is None
        if mismatch:
            self.result.status, self.result.message = "mismatch", mismatch.describe()
        return mismatch is None

    def warmup(self) -> None:
        # Alternate the longest and the shortest draw, so compile sees the extreme shapes before timing.
        longest, shortest = max(self.draws, key=sum), min(self.draws, key=sum)
        picks = [(longest, shortest)[index % 2] for index in range(self.ctx.options.warmup)]
        times = []
        for index, (prompt_len, gen_len) in enumerate(picks, 1):
            self.ctx.progress(f"{self.case.id}: warm-up {index}/{len(picks)}")
            times.append(self._generate(prompt_len, gen_len).marks_s[-1])
        self.result.samples["warmup_e2e_s"] = times

    def measure(self, loop_runner: LoopRunner = plain_loop) -> None:
        samples = {key: [] for key in ("ttft_s", "tpot_s", "e2e_s", "prompt_lens", "gen_lens")}
        draws = iter(self.draws)
        total = len(self.draws)

        def iteration() -> None:
            prompt_len, gen_len = next(draws)
            marks = self._generate(prompt_len, gen_len).marks_s
            samples["ttft_s"].append(marks[0])
            samples["tpot_s"].extend(decode_intervals(marks))
            samples["e2e_s"].append(marks[-1])
            samples["prompt_lens"].append(prompt_len)
            samples["gen_lens"].append(gen_len)

        self.ctx.progress(f"{self.case.id}: measuring {total} iterations")
        peak = make_peak(self.ctx.device)
        peak.start()
        with self.session.timed():
            loop_runner(iteration, total)
        self.result.peak_mem_bytes = peak.peak_bytes()
        self.result.peak_mem_method = peak.method
        self.result.samples.update(samples)

    def collect_evidence(self) -> None:
        self.result.evidence = {name: LEVERS.get(name).evidence(self.session) for name in self.case.stack}


def execute(case: Case, ctx: RunContext, measure: bool, loop_runner: LoopRunner = plain_loop) -> CaseResult:
    """Run one case to a result. Failures become a recorded status, never a lost case."""
    run = None
    try:
        run = CaseRun(case, ctx)
        gen_len = run.draws[0][1] if measure else min(run.draws[0][1], ctx.options.quick_tokens)
        if run.check(gen_len) and measure:
            run.warmup()
            run.measure(loop_runner)
        if run.result.status == "ok":
            run.collect_evidence()
        return run.result
    except Exception as exc:  # recorded with its message; the run goes on with other cases
        result = run.result if run else CaseResult(case, "", ctx.device)
        result.status = "error"
        result.message = f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc(limit=8)
        return result
