import pytest

from harness.measure.pairs import ratio_of_medians, run_pairs


def recording_sides(calls: list[str]) -> dict:
    """Two sides that log each call and return their name with a per-side call number."""
    counts = {"a": 0, "b": 0}

    def side(name):
        def call():
            calls.append(name)
            counts[name] += 1
            return f"{name}{counts[name]}"
        return call

    return {"a": side("a"), "b": side("b")}


def test_pairs_alternate_which_side_runs_first():
    """An even pair index runs the first side then the second, an odd one the second then the first."""
    calls: list[str] = []
    run_pairs(recording_sides(calls), 4)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_each_side_gets_every_pair_and_its_outputs_in_order():
    """Every side is called once per pair, and its outputs come back in call order under its name."""
    for pairs in (0, 1, 5):
        found = run_pairs(recording_sides([]), pairs)
        assert list(found) == ["a", "b"]
        assert found["a"] == [f"a{n}" for n in range(1, pairs + 1)]
        assert found["b"] == [f"b{n}" for n in range(1, pairs + 1)]


def test_a_pair_has_exactly_two_sides():
    """Anything but two sides is refused before any side runs."""
    with pytest.raises(ValueError, match="two sides"):
        run_pairs({"a": lambda: 1}, 1)


def test_ratio_of_medians_against_a_hand_computation():
    """The ratio is the first side's median over the second's, an even count taking the middle two's mean."""
    # medians: [1, 3, 8] -> 3; [1, 2, 3, 5] -> 2.5
    assert ratio_of_medians([8.0, 1.0, 3.0], [5.0, 1.0, 3.0, 2.0]) == pytest.approx(3 / 2.5)
    assert ratio_of_medians([2.0], [4.0]) == 0.5

