"""Fixtures shared by the harness's own tests (the plugin is loaded by the root conftest)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.measure.case import RunContext
from harness.options import RunOptions
from tests.browser import Browser, find_chromium


@pytest.fixture
def ctx_factory():
    def make(**changes) -> RunContext:
        # contention_ratio 0: tests assert outcomes, and a busy test machine must not turn them into `contended`
        options = RunOptions(**{"warmup": 1, "iterations": 3, "quick_tokens": 6, "contention_ratio": 0, **changes})
        return RunContext(options, "cpu")

    return make


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Why: results must not depend on how many threads another test left behind.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def browser():
    """A headless chromium session (tests/browser.py): skipped where none is installed, failed in CI."""
    binary = find_chromium()
    if binary is None:
        message = "chromium is not installed (apt-get install -y chromium): the pages cannot be tested"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (.ci/run): a missing browser there is a failure
        pytest.skip(message)
    session = Browser(binary, timeout_s=60.0)  # a loaded 2-core machine once took over 30 s for one reply
    yield session
    session.close()


ROOT = Path(__file__).resolve().parents[1]
# Two stacks of one varied-length Llama workload: a profiled iteration each, TPOT samples, drawn
# lengths and a one-step ladder, in well under a minute on two cores.
RECORDED_RUN = ["-p", "no:cacheprovider", "--benchmark", "--allow-unjudged", "all", "--contention-ratio", "0",
                "--iterations", "3", "--warmup", "1", "--stacks", "eager,sdpa", "-k", "lognormal", "-q"]


@pytest.fixture(scope="session")
def recorded_run(tmp_path_factory) -> Path:
    """The results file of one real tiny `pytest suites/test_llama.py --benchmark` run (RECORDED_RUN), shared
    by the tests that draw pages and figures from a recorded run: it is run once per session."""
    folder = tmp_path_factory.mktemp("recorded")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/test_llama.py", *RECORDED_RUN, "--results-dir", str(folder)],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = folder.glob("run-*.json")
    return path
