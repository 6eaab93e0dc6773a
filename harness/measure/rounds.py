"""Interleaved rounds and the contention guard: pure bookkeeping, no torch (docs/rounds.md).

The stacks of one workload are measured in rounds: every round runs each stack's next few
iterations, in an order that rotates from a seeded shuffle, so drift and bursts of load fall on
all stacks alike. A machine-speed probe before each stack's share of a round, and one after the
last, brackets every timed chunk; a round whose probes read much slower than the workload's quiet
reference is contended, is re-run within a budget, and never counts as a sample.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.analyse.stats import median, quantile

# Probe readings over this multiple of the quiet reference mark a round contended, when at least
# CONTENDED_READINGS of them do. Why (docs/rounds.md, measured on the shared 2-core machines):
# quiet rounds' readings sit at 1.0-1.4x their lower quartile with lone spikes to 2x (the VM's
# steal time), while another busy process on the cores slows every reading for seconds, 2x and
# more; one slow reading alone marked a third of quiet rounds, two in a round about one in 18.
CONTENTION_RATIO = 1.5
CONTENDED_READINGS = 2
# The quiet reference is this quantile of the workload's probe readings so far (each taken alone,
# right after model work: before each warm-up run, then in the clean rounds): load during part of
# the warm-up leaves it where the quiet readings are.
QUIET_QUANTILE = 0.25
# Contended rounds are re-run up to this share of the round count (rounded up), then given up.
RERUN_FRAC = 0.5
# A workload whose clean rounds stay below this share of its round count is `contended`: its
# cases are left out of ladders and verdicts, with the reason, never printed as findings.
MIN_CLEAN_FRAC = 2 / 3
# After a contended round the next one waits for the machine to read quiet again (probing every
# QUIET_POLL_S, at most QUIET_WAIT_S per wait and QUIET_WAIT_BUDGET_S per workload): on a shared
# runner other jobs come and go within seconds, and a round started in a quiet spell is clean.
QUIET_POLL_S = 0.1
QUIET_WAIT_S = 10.0
QUIET_WAIT_BUDGET_S = 60.0


def round_orders(stacks: Sequence[str], count: int, seed: int) -> list[tuple[str, ...]]:
    """The order of each of `count` rounds: a seeded shuffle of the stacks, rotated by one each
    round, so every stack runs in every position equally often over len(stacks) rounds."""
    if not stacks:
        raise ValueError("rounds need at least one stack")
    if len(set(stacks)) != len(stacks):
        raise ValueError(f"stacks named twice: {', '.join(stacks)}")
    base = list(stacks)
    random.Random(seed).shuffle(base)
    return [tuple(base[index % len(base):] + base[: index % len(base)]) for index in range(count)]


def chunks(iterations: int, rounds: int) -> list[range]:
    """The iteration indices each round runs: `iterations` split into `rounds` equal parts."""
    if rounds < 1 or iterations % rounds:
        raise ValueError(f"{iterations} iterations do not split into {rounds} equal rounds")
    size = iterations // rounds
    return [range(index * size, (index + 1) * size) for index in range(rounds)]


def quiet_reference_s(probes_s: Sequence[float]) -> float:
    """The workload's quiet machine speed: the lower quartile of its warm-up probe readings."""
    return quantile(probes_s, QUIET_QUANTILE)


@dataclass(frozen=True)
class Guard:
    """Judges rounds against a quiet reference. `reason` says why a set of readings is contended
    ("" when it is not); a device state (GPU clocks, throttling, other processes) can add its own."""

    reference_s: float
    ratio: float = CONTENTION_RATIO

    def reason(self, probes_s: Sequence[float], device_notes: Sequence[str] = ()) -> str:
        """Contended when CONTENDED_READINGS of the readings (all of them, if fewer) are slow."""
        if not self.ratio:  # the guard is off (--contention-ratio 0)
            return ""
        slow = sorted(p for p in probes_s if p > self.ratio * self.reference_s)
        notes = list(device_notes)
        if slow and len(slow) >= min(CONTENDED_READINGS, len(probes_s)):
            notes.insert(0, f"{len(slow)} probe(s) up to {slow[-1] * 1e3:.2f} ms = {slow[-1] / self.reference_s:.2f}x "
                            f"the quiet {self.reference_s * 1e3:.2f} ms (over {self.ratio:g}x)")
        return "; ".join(notes)


@dataclass
class RoundLog:
    """One executed round: which round of the schedule it measured, in what order, what the
    probes read, and why it counts as contended ("" when clean)."""

    index: int
    order: tuple[str, ...]
    probes_s: list[float] = field(default_factory=list)
    contended: str = ""
    rerun: bool = False
    waited_s: float = 0.0  # spent waiting for a quiet machine before the round

    def to_dict(self) -> dict:
        return {"index": self.index, "order": list(self.order), "probes_s": self.probes_s,
                "contended": self.contended, "rerun": self.rerun, "waited_s": self.waited_s}


def wait_for_quiet(read_s: Callable[[], Sequence[float]], guard: Guard, limit_s: float) -> float:
    """Read the probe until the guard finds the machine quiet, for at most `limit_s`; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s and guard.reason(read_s()):
        time.sleep(QUIET_POLL_S)
    return time.perf_counter() - started


def rerun_budget(rounds: int, frac: float = RERUN_FRAC) -> int:
    return math.ceil(rounds * frac)


def clean_rounds(logs: Sequence[RoundLog]) -> set[int]:
    """Schedule indices with at least one clean execution (a clean re-run replaces a contended one)."""
    return {log.index for log in logs if not log.contended}


def verdict(logs: Sequence[RoundLog], rounds: int, min_clean_frac: float = MIN_CLEAN_FRAC) -> str:
    """Why the workload's measurement is contended ("" when enough rounds were clean)."""
    clean = len(clean_rounds(logs))
    if clean >= math.ceil(rounds * min_clean_frac):
        return ""
    reruns = sum(1 for log in logs if log.rerun)
    worst = max((max(log.probes_s, default=0.0) for log in logs if log.contended), default=0.0)
    return (f"contended: {rounds - clean} of {rounds} rounds stayed contended after {reruns} re-run(s) "
            f"(slowest probe {worst * 1e3:.2f} ms)")


def summary(logs: Sequence[RoundLog], rounds: int, per_round: int, seed: int, guard: Guard | None,
            mode: str, why: str = "") -> dict:
    """The record's "rounds" entry: the schedule, each executed round, and the guard's verdict."""
    return {
        "mode": mode,
        "why": why,
        "count": rounds,
        "iterations_per_round": per_round,
        "seed": seed,
        "reference_probe_s": guard.reference_s if guard else None,
        "contention_ratio": guard.ratio if guard else None,
        "executed": [log.to_dict() for log in logs],
        "contended_rounds": sum(1 for log in logs if log.contended),
        "reruns": sum(1 for log in logs if log.rerun),
        "clean_rounds": len(clean_rounds(logs)),
        "waited_s": sum(log.waited_s for log in logs),
        "probe_median_s": median([p for log in logs for p in log.probes_s]) if any(log.probes_s for log in logs) else None,
    }


def run_figures(records: Sequence[dict]) -> dict:
    """How a run's workloads were measured, from its case records: workloads, executed rounds,
    contended and re-run ones, sequential workloads and contended cases. The cases of an
    interleaved workload share one rounds entry; a sequential workload's each have their own."""
    entries: dict[str, dict] = {}
    for record in records:
        found = record.get("rounds")
        if found:
            entries[record["workload_id"] if found["mode"] == "interleaved" else record["id"]] = found
    return {
        "workloads": len({r["workload_id"] for r in records if r.get("rounds")}),
        "rounds": sum(len(found["executed"]) for found in entries.values()),
        "contended": sum(found["contended_rounds"] for found in entries.values()),
        "reruns": sum(found["reruns"] for found in entries.values()),
        "sequential": len({r["workload_id"] for r in records if (r.get("rounds") or {}).get("mode") == "sequential"}),
        "contended_cases": [r["id"] for r in records if r["status"] == "contended"],
    }
