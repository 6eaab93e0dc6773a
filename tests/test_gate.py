"""Gating end to end through pytest: record baselines, re-run, plant a real slowdown."""

import pytest

from harness.errors import EXIT_HARNESS_ERROR, EXIT_REGRESSION
from harness.store.records import load_results
from tests.test_plugin import CONFTEST, SUITE

# A real slowdown: busy-wait inside every RMSNorm (a hot operator) when the variable is set.
DELAY_CONFTEST = CONFTEST + '''
import os, time
from transformers.models.llama import modeling_llama

DELAY_S = float(os.environ.get("PLANT_DELAY_US", "0")) / 1e6
if DELAY_S:
    original = modeling_llama.LlamaRMSNorm.forward

    def slow_forward(self, hidden_states):
        until = time.perf_counter() + DELAY_S
        while time.perf_counter() < until:
            pass
        return original(self, hidden_states)

    modeling_llama.LlamaRMSNorm.forward = slow_forward
'''
RUN = [
    "-p", "no:cacheprovider", "--benchmark", "--contention-ratio", "0", "--stacks", "eager,sdpa",
    "--baseline-dir", "bl", "--results-dir", "res", "--tables",  # the verdict table, not only the summary
]


@pytest.fixture
def gated(pytester):
    pytester.makeconftest(DELAY_CONFTEST)
    pytester.makepyfile(test_llama=SUITE)
    return pytester


def test_back_to_back_runs_do_not_regress_and_a_planted_slowdown_does(gated, monkeypatch):
    """Back-to-back runs against fresh baselines do not regress, while a planted slowdown in RMSNorm regresses
    TPOT and is attributed to idle time in decode."""
    recorded = gated.runpytest_subprocess(*RUN, "--update-baselines")
    assert recorded.ret == 0, recorded.stdout.str()[-3000:]
    # 4 workloads x (eager, sdpa), and eager and sdpa of the tiny HumanEval workload
    recorded.stdout.fnmatch_lines(["*baseline bl/cpu-*/llama.json: 10 case(s) added, 0 replaced*"])

    # A busy test machine can leave a metric noisy, which fails closed (exit 12): this run asserts
    # "no regression", so it accepts noisy verdicts (tests/test_fail_closed.py covers exit 12 itself).
    again = gated.runpytest_subprocess(*RUN, "--allow-unjudged", "noisy")
    assert again.ret == 0, again.stdout.str()[-3000:]
    verdicts = again.stdout.str().split("verdicts vs baselines")[1]
    assert " regressed" not in verdicts.split("\n")[0], verdicts[:3000]

    monkeypatch.setenv("PLANT_DELAY_US", "400")  # 9 norms per token: about +3.6 ms on ~1.6 ms per token
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(gated.path / "summary.md"))
    slowed = gated.runpytest_subprocess(*RUN)
    assert slowed.ret == EXIT_REGRESSION, slowed.stdout.str()[-3000:]
    slowed.stdout.fnmatch_lines(["*verdicts vs baselines*regressed*", "*llama-tt-tiny-*tpot_s*regressed*"])
    # Attributed: the busy-wait runs no operator, so on the CPU it shows as idle time in decode.
    summary = (gated.path / "summary.md").read_text()
    assert any("tpot_s | **regressed**" in line and "profiled iteration: decode +" in line and "idle +" in line
               for line in summary.splitlines()), summary


def test_corrupt_baseline_is_a_harness_error_and_left_untouched(gated):
    """A corrupt baseline file stops the run with a harness error naming it, is left untouched, and no results
    file is written."""
    from harness.measure.env import environment
    from harness.store.machine import machine_class

    folder = gated.path / "bl" / machine_class(environment("cpu"))
    folder.mkdir(parents=True)
    (folder / "llama.json").write_text('{"kind": "harness-baseline", "schema_version": 1, "cases": {"x": ')
    result = gated.runpytest_subprocess(*RUN)
    assert result.ret == EXIT_HARNESS_ERROR
    result.stderr.fnmatch_lines([f"*harness error: bl/{folder.name}/llama.json: not valid JSON*"])
    assert (folder / "llama.json").read_text().endswith('"x": ')
    assert not (gated.path / "res").exists() or not list((gated.path / "res").glob("run-*.json"))


ERROR_CONFTEST = CONFTEST + '''
import dataclasses
from harness.families import FAMILIES
from harness.levers import LEVERS, Lever

def out_of_memory(session):
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (planted)")

LEVERS._levers["oom"] = Lever("oom", "oom", "raises", configure=lambda plan: plan, evidence=out_of_memory)
FAMILIES["llama"] = dataclasses.replace(FAMILIES["llama"], stacks=(("eager",), ("sdpa",), ("sdpa", "oom")))
'''


def test_a_failing_case_is_recorded_and_the_others_still_compared(pytester):
    """A failing case is recorded as an error and fails its tests, while the other cases pass and are still
    compared."""
    pytester.makeconftest(ERROR_CONFTEST)
    pytester.makepyfile(test_llama=SUITE)
    args = [
        "-p", "no:cacheprovider", "--benchmark", "--contention-ratio", "0", "--baseline-dir", "bl",
        "--results-dir", "res", "--iterations", "3", "--tables",
    ]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=10, failed=3)  # +2: eager and sdpa of the tiny HumanEval workload
    result.stdout.fnmatch_lines(["*sdpa+oom: error: RuntimeError: CUDA out of memory*"])
    (results_file,) = (pytester.path / "res").glob("run-*.json")
    statuses = [case["status"] for case in load_results(results_file)["cases"]]
    assert statuses.count("error") == 3 and statuses.count("ok") == 10
    verdicts = result.stdout.str().split("verdicts vs baselines")[1]
    assert "no_baseline" in verdicts and "error" in verdicts
