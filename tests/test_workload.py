import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.spec.workload import MIN_PROMPT_LEN, Lengths, prompt_ids
from tests.strategies import lengths


def test_fixed_point_repeats():
    """Lengths without a distribution draw the same prompt and generated length every time."""
    assert Lengths(128, 64).draws(3, seed=0) == [(128, 64)] * 3


@given(lengths, st.integers(0, 2**31))
def test_draws_are_seeded_and_bounded(spec, seed):
    """Length draws depend only on the seed and stay within the minimum prompt, one generated token and the
    longest total length."""
    first = spec.draws(20, seed)
    assert first == spec.draws(20, seed)
    longest = spec.max_total_len()
    for prompt_len, gen_len in first:
        assert prompt_len >= MIN_PROMPT_LEN and gen_len >= 1
        assert prompt_len + gen_len <= longest


def test_distribution_varies_lengths():
    """A lognormal distribution varies the lengths drawn."""
    draws = Lengths(64, 32, dist="lognormal").draws(50, seed=0)
    assert len(set(draws)) > 10


@pytest.mark.parametrize("bad", [dict(prompt_len=1, gen_len=4), dict(prompt_len=8, gen_len=0), dict(prompt_len=8, gen_len=4, dist="zipf")])
def test_invalid_lengths_rejected(bad):
    """Lengths with too short a prompt, no generated token or an unknown distribution are refused."""
    with pytest.raises(ValueError):
        Lengths(**bad)


def test_prompt_ids_are_seeded():
    """Prompt ids have the asked shape, stay within the vocabulary and depend only on the seed."""
    a = prompt_ids(2, 16, 100, seed=1)
    assert a.shape == (2, 16) and int(a.max()) < 100
    assert (a == prompt_ids(2, 16, 100, seed=1)).all()
    assert not (a == prompt_ids(2, 16, 100, seed=2)).all()
