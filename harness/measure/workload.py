"""Measuring a workload: its cases' stacks in interleaved rounds, guarded against contention.

Every case is built, checked against the baseline stack's output and warmed up (compile and
graph capture happen here, never in the rounds), and its session stays warm. Then each round
runs every stack's next iterations, in a rotating seeded order (harness.measure.rounds), with a
machine-speed probe before each stack's share and after the last, so that a ratio between two
stacks compares the code, not two moments of the machine. Contended rounds are re-run within a
budget; a workload whose rounds stay contended marks its cases `contended`. Where the stacks
cannot all stay warm on the device (the fit estimate), each case is measured on its own, one
after another, and its record says so. docs/rounds.md has the why of each choice.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence

from harness.levers import LEVERS
from harness.measure.calibration import probe_s
from harness.measure.case import CaseRun, RunContext
from harness.measure.device_state import state_reader
from harness.measure.record import CaseResult
from harness.measure.rounds import (
    QUIET_WAIT_BUDGET_S,
    QUIET_WAIT_S,
    Guard,
    RoundLog,
    chunks,
    quiet_reference_s,
    rerun_budget,
    round_orders,
    summary,
    verdict,
    wait_for_quiet,
)
from harness.options import RunOptions
from harness.spec.fit import fit_together
from harness.spec.matrix import Case

# What a case's failure may raise and still leave a record: any exception, and SystemExit too (a
# library's sys.exit inside a lever is that case's failure, not the run's end). KeyboardInterrupt is
# the user's: it ends the run, with every finished case's record kept.
CASE_FAILURES = (Exception, SystemExit)

# Readings the quiet reference needs before the rounds; a workload with fewer warm-up probes
# (--warmup 0, one stack) takes the rest right before its rounds.
REFERENCE_READINGS = 4

Rounds = dict[int, dict[str, tuple[float, list]]]  # schedule index -> stack -> (its probe, its chunk's outputs)


def quick_tokens(case: Case, options: RunOptions) -> int:
    """Tokens of a quick check: --quick-tokens, or more where a lever of the stack needs them."""
    return max([options.quick_tokens] + [LEVERS.get(name).quick_tokens for name in case.stack])


def failed(result: CaseResult, exc: BaseException) -> CaseResult:
    """The case's result as an error, with its message and traceback (the run goes on)."""
    result.status = "error"
    result.message = f"{type(exc).__name__}: {exc}"
    result.traceback = traceback.format_exc(limit=8)
    return result


def round_count(options: RunOptions) -> int:
    """--rounds, or one round per iteration (0, the default: the finest interleaving)."""
    return options.rounds or options.iterations


class WorkloadRun:
    """One workload's cases (same workload_id, different stacks) measured together."""

    def __init__(self, cases: Sequence[Case], ctx: RunContext, quiet_wait_budget_s: float = QUIET_WAIT_BUDGET_S) -> None:
        if len({case.workload_id for case in cases}) > 1:
            raise ValueError("a WorkloadRun measures the cases of one workload")
        self.cases = list(cases)
        self.ctx = ctx
        self.results: dict[str, CaseResult] = {}
        self.read_device = state_reader(ctx.device)
        self.rounds = round_count(ctx.options)
        self.chunks = chunks(ctx.options.iterations, self.rounds)
        self.wait_left_s = quiet_wait_budget_s  # for waits for a quiet machine after contended rounds
        self.readings: list[float] = []  # the workload's probe readings so far (the quiet reference's)

    def run(self) -> dict[str, CaseResult]:
        """Every case's result, by case id. Failures are recorded statuses, never lost cases."""
        LEVERS.reset_state(case.stack for case in self.cases)
        fits, why = fit_together(self.cases, self.ctx.device)
        if fits:
            self._measure(self.cases, "interleaved", why)
        else:
            for case in self.cases:  # one at a time: each case's sessions are freed before the next
                self._measure([case], "sequential", why)
        return self.results

    def _measure(self, cases: Sequence[Case], mode: str, why: str) -> None:
        # Interleaved, the float stacks share the float model while the quantized ones run: those
        # quantize a copy. One after another, a quantized stack quantizes the model itself.
        keep_float = mode == "interleaved"
        ready = [run for case in cases if (run := self._prepare(case, keep_float)) is not None]
        if not ready:
            return
        self.readings = [p for run in ready for p in run.warmup_probe()]
        self.readings += probe_s(max(0, REFERENCE_READINGS - len(self.readings)))
        logs, kept, latest = self._rounds(ready)
        contended = verdict(logs, self.rounds)
        for run in ready:  # a contended workload keeps the last take of every round, for inspection
            self._absorb(run, latest if contended else kept)
        guard = self._guard()
        own = quiet_reference_s(self.readings)
        self.ctx.quiet_probe_s = own if self.ctx.quiet_probe_s is None else min(own, self.ctx.quiet_probe_s)
        found = summary(logs, self.rounds, len(self.chunks[0]), self.ctx.options.seed, guard, mode, why)
        for run in ready:
            try:
                self._finish(run, found, contended, guard)
            except CASE_FAILURES as exc:
                failed(run.result, exc)

    def _prepare(self, case: Case, keep_float: bool) -> CaseRun | None:
        """Build, check and warm up one case; None (its result recorded) if it cannot be measured."""
        run = None
        try:
            self.ctx.on_case(case.id)
            run = CaseRun(case, self.ctx, keep_float)
            self.results[case.id] = run.result
            if not run.check(run.draws[0]):
                return None
            run.warmup()
        except CASE_FAILURES as exc:
            self.results[case.id] = failed(run.result if run else CaseResult(case, "", self.ctx.device), exc)
            return None
        return run

    def _guard(self) -> Guard:
        """The guard for the next round: the lower quartile of the workload's readings so far (the
        warm-up's and the clean rounds'), but the quietest reference of the run so far where this
        one is already contended against it (a workload measured wholly under load)."""
        own = quiet_reference_s(self.readings)
        earlier = self.ctx.quiet_probe_s
        ratio = self.ctx.options.contention_ratio
        if earlier is not None and Guard(earlier, ratio).reason([own]):
            return Guard(earlier, ratio)
        return Guard(own, ratio)

    def _rounds(self, ready: Sequence[CaseRun]) -> tuple[list[RoundLog], Rounds, Rounds]:
        """Run the schedule, re-running contended rounds within the budget: the logs, each round's
        clean outputs, and each round's last outputs (clean or not)."""
        by_stack = {run.case.stack_name: run for run in ready}
        orders = round_orders(list(by_stack), self.rounds + rerun_budget(self.rounds), self.ctx.options.seed)
        kept: Rounds = {}
        latest: Rounds = {}
        logs: list[RoundLog] = []
        schedule = list(range(self.rounds))
        budget = rerun_budget(self.rounds)
        while schedule:
            index = schedule.pop(0)
            log = RoundLog(index, orders[len(logs)], rerun=len(logs) >= self.rounds)
            guard = self._guard()
            if logs and logs[-1].contended:
                log.waited_s = self._await_quiet(guard)
            outputs = self._one_round(by_stack, log, guard)
            latest[index] = outputs
            if not log.contended:
                kept[index] = outputs
                self.readings += log.probes_s  # not a contended round's: they would lift the reference toward the load
            elif budget:
                budget -= 1
                schedule.append(index)
            logs.append(log)
            self._say_round(log, logs)
        return logs, kept, latest

    def _await_quiet(self, guard: Guard) -> float:
        """Probe until the machine reads quiet again, within the wait budget; the seconds waited."""
        waited = wait_for_quiet(lambda: probe_s(1), guard, min(QUIET_WAIT_S, self.wait_left_s))
        self.wait_left_s = max(0.0, self.wait_left_s - waited)
        return waited

    def _one_round(self, by_stack: dict[str, CaseRun], log: RoundLog, guard: Guard) -> dict[str, tuple[float, list]]:
        """Each stack's share of one round, a probe (and the device's state) before each and after
        the last; the log gets the readings and the guard's verdict."""
        outputs: dict[str, tuple[float, list]] = {}
        notes: list[str] = []
        for stack in log.order:
            run = by_stack[stack]
            if run.result.status != "ok":
                continue  # failed in an earlier round: the others go on
            probe = probe_s(1)[0]
            log.probes_s.append(probe)
            notes += self.read_device().disturbances()
            try:
                self.ctx.on_case(run.case.id)
                outputs[stack] = (probe, run.timed_chunk(self.chunks[log.index]))
            except CASE_FAILURES as exc:
                failed(run.result, exc)
        log.probes_s.append(probe_s(1)[0])
        notes += self.read_device().disturbances()
        log.contended = guard.reason(log.probes_s, sorted(set(notes)))
        return outputs

    def _absorb(self, run: CaseRun, rounds: Rounds) -> None:
        for index in sorted(rounds):
            if run.case.stack_name in rounds[index]:
                probe, outputs = rounds[index][run.case.stack_name]
                run.absorb(index, probe, outputs)

    def _say_round(self, log: RoundLog, logs: Sequence[RoundLog]) -> None:
        contended = sum(1 for item in logs if item.contended)
        state = f", {contended} contended" if contended else ""
        again = " (re-run)" if log.rerun else ""
        self.ctx.progress(f"{self.cases[0].workload_id}: round {len(logs)} (schedule {log.index + 1}/{self.rounds}){again}"
                          f"{state}{': ' + log.contended if log.contended else ''}")

    def _finish(self, run: CaseRun, found: dict, contended: str, guard: Guard) -> None:
        """After the rounds: the rounds' record, the contended status, then the untimed extras
        (the memory footprint, the guarded profile, speed of light, the levers' evidence). The
        footprint counts this case's own model and session only: the other warm sessions are in
        no part of it (harness.measure.footprint)."""
        self.ctx.on_case(run.case.id)
        result = run.result
        result.rounds = found
        if result.status != "ok":
            return
        if contended:
            result.status, result.message = "contended", contended
        run.measure_peak()
        run.profile(run.draws[0], guard)
        run.speed_of_light()
        run.collect_evidence()


def execute(case: Case, ctx: RunContext, measure: bool) -> CaseResult:
    """Run one case to a result: measured (a workload of one case), or checked only."""
    if measure:
        return WorkloadRun([case], ctx).run()[case.id]
    run = None
    try:
        ctx.on_case(case.id)
        LEVERS.reset_state([case.stack])
        run = CaseRun(case, ctx, keep_float=fit_together([case], ctx.device)[0])
        prompt_len, gen_len = run.draws[0]
        first = (prompt_len, min(gen_len, quick_tokens(case, ctx.options)))
        if run.check(first) and ctx.options.trace_dir:
            run.profile(first)
        if run.result.status == "ok":
            run.collect_evidence()
        return run.result
    except CASE_FAILURES as exc:  # recorded with its message; the run goes on with other cases
        return failed(run.result if run else CaseResult(case, "", ctx.device), exc)
