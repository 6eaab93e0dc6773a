"""HSTU (generative recommendation, tasks rank and retrieve) over the matrix its spec declares (harness/families/hstu/)."""

import pytest

pytestmark = pytest.mark.family("hstu")


def test_hstu(case, harness):
    """Each HSTU case of the matrix passes the harness's output check and, with --benchmark, is measured."""
    harness(case)
