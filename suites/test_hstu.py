"""HSTU (generative recommendation, tasks rank and retrieve) over the matrix its spec declares (harness/families/hstu/)."""

import pytest

from harness.measure.profile.analysis import profile_problems

pytestmark = pytest.mark.family("hstu")


def test_hstu(case, harness):
    """Each HSTU case of the matrix passes the harness's output check and, with --benchmark, is measured, and a
    profiled one splits its time by embedding, encoder and scoring stage, accounted for against its clock."""
    problems = profile_problems(harness(case).to_record())
    assert not problems, problems
