"""Fixtures shared by the harness's own tests (the plugin is loaded by the root conftest)."""

import pytest
import torch

from harness.measure.case import RunContext
from harness.options import RunOptions


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
