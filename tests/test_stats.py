import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analyse.stats import decode_intervals, median, min_samples_for_quantile, quantile, reported_quantile, speedup

samples = st.lists(st.floats(1e-6, 1e3, allow_nan=False), min_size=1, max_size=200)


@given(samples, st.floats(0, 1))
def test_quantile_matches_numpy(values, q):
    """Quantiles match numpy's linear interpolation."""
    assert math.isclose(quantile(values, q), float(np.quantile(values, q)), rel_tol=1e-9, abs_tol=1e-12)


def test_p90_needs_twenty_samples():
    """The p90 is reported only from twenty samples on."""
    assert min_samples_for_quantile(0.9) == 20
    assert reported_quantile([1.0] * 19, 0.9) is None
    assert reported_quantile(list(range(20)), 0.9) == pytest.approx(17.1)


def test_decode_intervals_from_marks():
    """Decode intervals are the gaps between consecutive token marks."""
    assert decode_intervals([0.5, 0.75, 1.25]) == [0.25, 0.5]
    assert decode_intervals([0.5]) == []


def test_speedup_is_baseline_over_candidate():
    """A speed-up is the baseline's median over the candidate's, and there is none without baseline samples."""
    assert speedup([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]) == 2.0
    assert speedup([], [1.0]) is None


def test_quantile_of_nothing_is_an_error():
    """The median of no samples is an error."""
    with pytest.raises(ValueError):
        median([])
