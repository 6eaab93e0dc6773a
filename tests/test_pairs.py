from types import SimpleNamespace

import pytest

from harness.measure.pairs import PairedExperiment, ratio_of_medians, run_pairs


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


class FakeBenchmark:
    """Stands in for pytest-benchmark's fixture: logs the rounds of each pedantic call."""

    def __init__(self):
        self.extra_info: dict = {}
        self.rounds: list[int] = []

    def pedantic(self, target, rounds):
        self.rounds.append(rounds)
        return target()


def experiment(benchmark: bool, asked: list) -> PairedExperiment:
    """A PairedExperiment over a stand-in run; `asked` logs each request for the benchmark fixture."""
    options = SimpleNamespace(benchmark=benchmark, preset="small", seed=7, checkpoint_dir="ckpt")
    run = SimpleNamespace(
        selection=SimpleNamespace(options=options, dtypes=("bfloat16", "float32"), device="cpu"),
        ctx=SimpleNamespace(models=SimpleNamespace(get=lambda *key: key)), notes=[],
    )
    fixture = FakeBenchmark()

    def benchmark_fixture():
        asked.append(fixture)
        return fixture

    return PairedExperiment(run, "chameleon", benchmark_fixture)


def test_experiment_model_key_is_the_runs_unless_overridden():
    """The model comes from the run's cache under the family, preset, first dtype, device, seed and checkpoint
    folder, with the preset and checkpoint folder overridable."""
    found = experiment(False, [])
    assert found.model() == ("chameleon", "small", "bfloat16", "cpu", 7, "ckpt")
    assert found.model(preset="tiny", checkpoint_dir="") == ("chameleon", "tiny", "bfloat16", "cpu", 7, "")


@pytest.mark.parametrize("benchmarking", [False, True])
def test_benchmark_route_only_under_benchmark(benchmarking):
    """Under --benchmark the benchmark pair count is chosen, the experiment runs once through pedantic and its
    result and note are recorded; without it the quick count, a plain call, and no fixture or note at all."""
    asked: list = []
    found = experiment(benchmarking, asked)
    assert found.pairs(5, 1) == (5 if benchmarking else 1)
    assert found.measure(lambda: {"ratio": 2.0}) == {"ratio": 2.0}
    found.record({"ratio": 2.0}, "a note")
    assert found.run.notes == (["a note"] if benchmarking else [])
    assert len(asked) == (1 if benchmarking else 0)  # the fixture is asked for once, and only under --benchmark
    if benchmarking:
        assert asked[0].rounds == [1] and asked[0].extra_info == {"ratio": 2.0}
