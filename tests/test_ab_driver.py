"""The A/B driver (harness/ab/driver.py) on fake workers: early stopping at a look, the side order of
every iteration, contended pairs re-run and then given up, and a failed or changed-answer case."""

import random
from pathlib import Path

import pytest

from harness.ab.decide import REGRESSED, UNCHANGED, Rule
from harness.ab.driver import CONTENDED, FAILED, MISMATCH, ABRun, case_verdict

QUIET_S, BUSY_S = 0.003, 0.03


class FakeWorker:
    """A side that answers the driver's requests: e2e `base_s * factor` with a little seeded noise."""

    def __init__(self, name: str, log: list, factor: float = 1.0, busy: bool = False, fail: str = "", prepare: str = "ok"):
        self.name, self.log, self.factor, self.busy, self.fail, self.prepare_status = name, log, factor, busy, fail, prepare
        self.rng = random.Random(name)

    def call(self, command: str, **arguments) -> dict:
        self.log.append((self.name, command, arguments.get("iterations")))
        if command == "prepare":
            return {case_id: {"status": self.prepare_status, "message": "differs", "draws": 12,
                              "warmup_probe_s": [QUIET_S] * 2} for case_id in arguments["case_ids"]}
        if command == "probe":
            return {"probes_s": [QUIET_S] * arguments["count"]}
        if command == "chunk":
            if self.fail:
                return {"error": self.fail}
            value = 0.1 * self.factor * (1 + self.rng.gauss(0, 0.002))
            probes = [BUSY_S if self.busy else QUIET_S] * (arguments["probe_before"] + arguments["probe_after"])
            return {"probes_s": probes, "iterations": [{"e2e_s": value, "tpot_s": value / 10}]}
        return {}

    checked = call


def run(folder: Path, base: FakeWorker, head: FakeWorker) -> list:
    ab = ABRun({"base": base, "head": head}, Rule(), per_round=3, seed=0, contention_ratio=1.5,
               progress=lambda message: None, wait_left_s=0.0)
    return ab.workload("workload", ["case"], folder)


def test_a_clear_slowdown_stops_at_the_first_look(tmp_path):
    """HEAD 20% slower with 0.2% noise: regressed after the first look's 6 pairs, not the maximum 32."""
    log: list = []
    (state,) = run(tmp_path, FakeWorker("base", log), FakeWorker("head", log, factor=1.2))
    assert case_verdict(state) == REGRESSED and state.pairs == 6
    assert state.decisions["e2e_s"].ratio == pytest.approx(1.2, rel=0.01)


def test_the_same_code_is_unchanged_at_the_first_look(tmp_path):
    """Both sides equal: unchanged at 6 pairs, and every iteration ran on both sides in ABBA order."""
    log: list = []
    (state,) = run(tmp_path, FakeWorker("base", log), FakeWorker("head", log))
    assert case_verdict(state) == UNCHANGED and state.pairs == 6
    chunks = [(side, iterations[0]) for side, command, iterations in log if command == "chunk"]
    sides = "".join(side[0] for side, _ in chunks)
    assert sides == (sides[:2] + sides[:2][::-1]) * (len(sides) // 4) + sides[: len(sides) % 4]
    assert all(chunks[2 * i][1] == chunks[2 * i + 1][1] for i in range(len(chunks) // 2)), "the same draw on both sides"


def test_a_busy_machine_is_contended_not_judged(tmp_path):
    """Every pair's probes read 10x the quiet reference: re-run up to the budget, then contended, never a verdict."""
    log: list = []
    (state,) = run(tmp_path, FakeWorker("base", log, busy=True), FakeWorker("head", log, busy=True))
    assert case_verdict(state) == CONTENDED and state.pairs == 0
    assert state.contended == Rule().max_pairs // 2 + 1
    assert "not judged" in state.message


def test_a_failing_side_and_a_changed_answer_are_reported(tmp_path):
    """A side whose chunk raises makes the case an error; HEAD's differing output a mismatch with no pairs run."""
    (failed,) = run(tmp_path, FakeWorker("base", []), FakeWorker("head", [], fail="RuntimeError: boom"))
    assert case_verdict(failed) == FAILED and "boom" in failed.message
    log: list = []
    (changed,) = run(tmp_path, FakeWorker("base", log), FakeWorker("head", log, prepare="mismatch"))
    assert case_verdict(changed) == MISMATCH and not any(command == "chunk" for _, command, _ in log)
