"""Fixtures shared by the harness's own tests (the plugin is loaded by the root conftest)."""

import os

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
