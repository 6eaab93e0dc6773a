"""--isolate: a native crash in a case's child process records that case as crashed and the run goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.measure import isolation
from harness.measure.case import RunContext
from harness.options import RunOptions
from harness.spec.selection import select

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = "hstu-rank-tiny-b8-longtail-p32-g16-i20000-fp32"
SELECT = "rank and longtail and (padded or jagged)"

# Installed as sitecustomize in the test's children: a SIGSEGV, the crash no Python handler can catch,
# when the case named by $PLANT_CRASH_CASE starts the phase named by $PLANT_CRASH_AT.
PLANT = '''
import os, signal
case_id, phase = os.environ.get("PLANT_CRASH_CASE"), os.environ.get("PLANT_CRASH_AT")
if case_id and phase:
    import harness.measure.case as module
    original = getattr(module.CaseRun, phase)
    def planted(self, *args, **kwargs):
        if self.case.id == case_id:
            os.kill(os.getpid(), signal.SIGSEGV)
        return original(self, *args, **kwargs)
    setattr(module.CaseRun, phase, planted)
'''


def run_suite(tmp_path: Path, crash_case: str, phase: str, *options: str) -> tuple[subprocess.CompletedProcess, Path]:
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plant), str(ROOT)]),
           "PLANT_CRASH_CASE": crash_case, "PLANT_CRASH_AT": phase}
    results = tmp_path / "results"
    command = [sys.executable, "-m", "pytest", "suites/test_hstu.py", "--isolate", "-k", SELECT, "-p", "no:cacheprovider",
               "-q", "--results-dir", str(results), *options]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600), results


def test_a_crashed_quick_check_fails_its_case_only(tmp_path):
    """A segfault in one case's quick check fails that case, named crashed by SIGSEGV, and the next case still passes."""
    done, _ = run_suite(tmp_path, f"{WORKLOAD}-jagged", "check")
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"{WORKLOAD}-jagged: crashed: the child process measuring it (--isolate) killed by SIGSEGV" in done.stdout
    assert "1 failed, 1 passed" in done.stdout


def test_a_crash_in_the_rounds_is_recorded_and_the_workload_goes_on(tmp_path):
    """A segfault in one stack's timed rounds records it crashed, with faulthandler's stack, and the other stack is measured."""
    done, results = run_suite(tmp_path, f"{WORKLOAD}-jagged", "timed_chunk", "--benchmark", "--iterations", "2",
                              "--warmup", "0", "--allow-unjudged", "all")
    assert done.returncode == 1, done.stdout[-3000:]
    (path,) = results.glob("*.json")
    cases = {case["id"]: case for case in json.loads(path.read_text())["cases"]}
    crashed, other = cases[f"{WORKLOAD}-jagged"], cases[f"{WORKLOAD}-padded"]
    assert crashed["status"] == "crashed" and "SIGSEGV" in crashed["message"]
    assert "Segmentation fault" in crashed["traceback"] and crashed["e2e_s"] == []
    assert other["status"] in ("ok", "contended") and len(other["e2e_s"]) == 2


@pytest.fixture
def hstu_cases():
    selection = select(RunOptions(families="hstu"), cuda_available=False)
    cases = [case for case in selection.expand("hstu")[0] if case.workload_id == WORKLOAD][:2]
    return cases, RunContext(selection.options, selection.device)


def test_a_child_dying_at_start_up_charges_every_case_once(hstu_cases, monkeypatch):
    """A child that exits before any case's work began charges every case left, so no loop of doomed children follows."""
    cases, ctx = hstu_cases
    started = []

    def command():
        started.append(1)
        return [sys.executable, "-c", "import sys; sys.exit(3)"], dict(os.environ)

    monkeypatch.setattr(isolation, "child_command", command)
    results = isolation.measure_isolated(cases, ctx, measure=False)
    assert len(started) == 1
    assert {result.status for result in results.values()} == {"crashed"}
    assert all("exited with status 3" in result.message for result in results.values())


def test_a_child_that_ends_quietly_without_finishing_is_an_error(hstu_cases, monkeypatch):
    """A child that exits 0 without its last word raises one line, rather than passing its cases as crashed."""
    cases, ctx = hstu_cases
    monkeypatch.setattr(isolation, "child_command", lambda: ([sys.executable, "-c", "print('hello', file=__import__('sys').stderr)"],
                                                              dict(os.environ)))
    with pytest.raises(HarnessError, match="without finishing.*hello"):
        isolation.measure_isolated(cases, ctx, measure=False)


def test_cases_run_in_process_unless_asked():
    """Isolation is opt-in: the default run measures in the pytest process."""
    assert RunOptions().isolate is False


def test_a_case_calling_sys_exit_is_recorded_and_the_run_goes_on(hstu_cases, monkeypatch):
    """A case whose code calls sys.exit gets an error record (probe K5), in a quick check and measured, instead of ending the run."""
    from harness.measure import case as case_module
    from harness.measure.workload import WorkloadRun, execute

    cases, ctx = hstu_cases

    def exits(self, draw):
        raise SystemExit("a library gave up")

    monkeypatch.setattr(case_module.CaseRun, "check", exits)
    result = execute(cases[0], ctx, measure=False)
    assert result.status == "error" and result.message == "SystemExit: a library gave up"
    measured = WorkloadRun(cases, ctx).run()
    assert {found.status for found in measured.values()} == {"error"}
