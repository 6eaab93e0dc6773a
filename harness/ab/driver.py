"""The A/B driver: both sides' warm workers, a workload at a time, measured in ABBA round pairs
with the contention guard, each case stopping as soon as its verdict is decided. No torch here.

Per workload: BASE then HEAD build, check and warm up every case (HEAD's output is compared with
BASE's); then each round pair runs, for every case still undecided (in a seeded order), the same
`per_round` draws on both sides, each draw on one side right after the other (the side order
alternating ABBA, within a pair and across pairs), with machine-speed probes at each side's first
and last iteration of the pair. A pair whose probes read a busy machine is not counted and is
re-run (within a budget); every counted pair gives one log ratio per metric (the median over its
draws of log HEAD/BASE), and at each look the case's metrics are judged (harness/ab/decide.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.ab.decide import DECIDED, IMPROVED, INCONCLUSIVE, REGRESSED, UNDECIDED, Decision, Rule, decide
from harness.ab.protocol import WorkerClient
from harness.ab.schedule import abba_orders, case_order, round_iterations
from harness.analyse.attribution import attribute
from harness.analyse.stats import median
from harness.measure.rounds import QUIET_WAIT_BUDGET_S, QUIET_WAIT_S, Guard, quiet_reference_s, rerun_budget, wait_for_quiet

REFERENCE_READINGS = 4  # probe readings the quiet reference needs before the first pair
FAILED, MISMATCH, CONTENDED, ONE_SIDED = "error", "mismatch", "contended", "one_sided"


@dataclass
class CaseState:
    """One case's A/B so far: its log ratios and decisions per metric, and how it was measured."""

    case_id: str
    workload_id: str
    draws: int = 1  # the case's seeded length draws (the same on both sides): pairs cycle through them
    status: str = "running"  # running, done, error, mismatch, contended, one_sided
    message: str = ""
    logs: dict[str, list[float]] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    attempts: int = 0  # pairs run, contended ones included
    contended: int = 0
    pair_wall_s: list[float] = field(default_factory=list)
    samples: dict[str, list[dict]] = field(default_factory=lambda: {"base": [], "head": []})
    attribution: dict[str, str] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return self.attempts - self.contended

    def to_dict(self) -> dict:
        return {"id": self.case_id, "workload_id": self.workload_id, "status": self.status, "message": self.message,
                "verdict": case_verdict(self), "pairs": self.pairs, "attempts": self.attempts,
                "contended_pairs": self.contended, "pair_wall_s": self.pair_wall_s, "log_ratios": self.logs,
                "decisions": {m: d.to_dict() for m, d in self.decisions.items()}, "samples": self.samples,
                "attribution": self.attribution}


# Worst first: the case's verdict is the worst of its metrics' (an error or mismatch beats all).
SEVERITY = (FAILED, MISMATCH, REGRESSED, CONTENDED, ONE_SIDED, INCONCLUSIVE, UNDECIDED, IMPROVED, "unchanged")


def case_verdict(state: CaseState) -> str:
    if state.status in (FAILED, MISMATCH, CONTENDED, ONE_SIDED):
        return state.status
    found = [d.status for d in state.decisions.values()] or [INCONCLUSIVE]
    return min(found, key=SEVERITY.index)


def pair_logs(base: Sequence[dict], head: Sequence[dict]) -> dict[str, float]:
    """One pair's log ratio per metric: the median over the chunk's iterations of log(HEAD/BASE)."""
    metrics = [m for m in base[0] if all(m in it and it[m] > 0 for it in (*base, *head))]
    return {m: median([math.log(h[m] / b[m]) for b, h in zip(base, head, strict=True)]) for m in metrics}


@dataclass
class ABRun:
    clients: dict[str, WorkerClient]
    rule: Rule
    per_round: int
    seed: int
    contention_ratio: float
    progress: Callable[[str], None] = print
    wait_left_s: float = QUIET_WAIT_BUDGET_S

    def workload(self, workload_id: str, case_ids: Sequence[str], folder: Path) -> list[CaseState]:
        """Every case of one workload measured and judged; failures are statuses, never lost cases."""
        states = {case_id: CaseState(case_id, workload_id) for case_id in case_ids}
        readings = self._prepare(states, folder)
        live = [s for s in states.values() if s.status == "running"]
        if live:
            readings += self.clients["base"].checked("probe", count=max(0, REFERENCE_READINGS - len(readings)))["probes_s"]
            guard = Guard(quiet_reference_s(readings), self.contention_ratio)
            self._pairs(live, guard)
            self._attribute([s for s in live if s.status == "done"])
        for client in self.clients.values():
            client.checked("release")
        return list(states.values())

    def _prepare(self, states: dict[str, CaseState], folder: Path) -> list[float]:
        folder.mkdir(parents=True, exist_ok=True)
        readings: list[float] = []
        for side in ("base", "head"):
            self.progress(f"{side}: building, checking and warming up {len(states)} case(s)")
            answers = self.clients[side].checked("prepare", case_ids=list(states), folder=str(folder), role=side)
            for case_id, answer in answers.items():
                state = states[case_id]
                readings += answer.get("warmup_probe_s", [])
                state.draws = answer.get("draws", state.draws)
                if answer["status"] != "ok" and state.status == "running":
                    state.status = FAILED if answer["status"] == "error" else MISMATCH
                    state.message = f"{side}: {answer['message']}"
        return readings

    def _pairs(self, live: list[CaseState], guard: Guard) -> None:
        limit = self.rule.max_pairs + rerun_budget(self.rule.max_pairs)
        orders = abba_orders(limit, self.seed)
        for pair in range(limit):
            running = {s.case_id: s for s in live if s.status == "running"}
            if not running:
                return
            self.progress(f"round pair {pair + 1} (at most {limit}): {len(running)} case(s) undecided")
            for case_id in case_order(list(running), pair, self.seed):
                self._one_pair(running[case_id], pair, orders[pair], guard)
        for state in live:
            if state.status == "running":
                self._finish(state, final=True)

    def _one_pair(self, state: CaseState, pair: int, order: tuple[str, str], guard: Guard) -> None:
        """One pair: each of its iterations on both sides back to back, the side order alternating
        per iteration (ABBA within the pair as across pairs), so the two times of one draw are a
        tenth of a second apart on a tiny model, not a whole chunk."""
        started = time.perf_counter()
        answers: dict[str, list[dict]] = {"base": [], "head": []}
        probes: list[float] = []
        draws = round_iterations(pair, self.per_round, state.draws)
        for index, draw in enumerate(draws):
            for side in order if index % 2 == 0 else order[::-1]:
                # Four readings a pair (each side's first and last chunk): more would let the guard's
                # two-slow-readings rule fire on a machine's ordinary spikes.
                ends = {"probe_before": index == 0, "probe_after": index == len(draws) - 1}
                answer = self.clients[side].call("chunk", case_id=state.case_id, iterations=[draw], **ends)
                if "error" in answer:
                    state.status, state.message = FAILED, f"{side}: {answer['error']}"
                    return
                answers[side] += answer["iterations"]
                probes += answer["probes_s"]
        state.attempts += 1
        if reason := guard.reason(probes):
            state.contended += 1
            if state.contended > rerun_budget(self.rule.max_pairs):
                state.status, state.message = CONTENDED, f"not judged: {state.contended} pairs contended, last: {reason}"
            self._wait_quiet(guard)
            return
        state.pair_wall_s.append(time.perf_counter() - started)
        for side in order:
            state.samples[side] += answers[side]
        for metric, value in pair_logs(answers["base"], answers["head"]).items():
            state.logs.setdefault(metric, []).append(value)
        self._finish(state, final=state.pairs >= self.rule.max_pairs)

    def _finish(self, state: CaseState, final: bool) -> None:
        """Judge every metric; the case stops once all are decided, one regressed, or no pairs are left."""
        state.decisions = {m: decide(logs, self.rule, final) for m, logs in state.logs.items()}
        statuses = [d.status for d in state.decisions.values()]
        if final or REGRESSED in statuses or (statuses and all(s in DECIDED for s in statuses)):
            state.status = "done"
            self.progress(f"{state.case_id}: {case_verdict(state)} after {state.pairs} pair(s)")

    def _wait_quiet(self, guard: Guard) -> None:
        """After a contended pair, wait (within the run's budget) for the machine to read quiet."""
        def read_s() -> list[float]:
            return self.clients["base"].checked("probe", count=2)["probes_s"]

        waited = wait_for_quiet(read_s, guard, min(QUIET_WAIT_S, self.wait_left_s))
        self.wait_left_s = max(0.0, self.wait_left_s - waited)

    def _attribute(self, states: Sequence[CaseState]) -> None:
        """A profiled iteration per side for each case with a moved metric: the categories that moved."""
        for state in states:
            moved = {m: d.status for m, d in state.decisions.items() if d.status in (REGRESSED, IMPROVED)}
            if not moved:
                continue
            profiles = {side: self.clients[side].call("profile", case_id=state.case_id) for side in ("base", "head")}
            if any("error" in p for p in profiles.values()):
                continue  # attribution explains a verdict and never decides one
            for metric, status in moved.items():
                state.attribution[metric] = attribute(metric, profiles["base"], profiles["head"], status == REGRESSED)
