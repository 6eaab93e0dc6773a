"""Interleaved A/B pairs: two named sides run in alternating order, so that machine noise hits
both alike, and a ratio of their medians; `run_rounds` does the same for more sides. Plus `PairedExperiment`, what a suite's paired
experiment needs from the run (no pytest state: the plugin's `harness_experiment` fixture makes it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from harness.analyse.stats import median

if TYPE_CHECKING:
    from harness.session import RunSession

T = TypeVar("T")


def run_pairs(sides: Mapping[str, Callable[[], T]], pairs: int) -> dict[str, list[T]]:
    """Call two named zero-argument callables `pairs` times each, in pairs of alternating order:
    pair index even runs the first side then the second, odd the second then the first (so
    neither always runs on a warmer cache). Returns each side's outputs in call order."""
    if len(sides) != 2:
        raise ValueError(f"a pair has two sides, got {len(sides)}: {', '.join(sides)}")
    return run_rounds(sides, pairs)


def run_rounds(sides: Mapping[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """Call two or more named zero-argument callables once per round, the order rotating by one
    side each round (round r starts with side r mod n), so that over n rounds every side runs
    in every position once. Two sides: run_pairs' alternation. Returns each side's outputs in
    call order."""
    if len(sides) < 2:
        raise ValueError(f"a round has at least two sides, got {len(sides)}: {', '.join(sides)}")
    names = list(sides)
    outputs: dict[str, list[T]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            outputs[name].append(sides[name]())
    return outputs


def ratio_of_medians(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """median(numerator) / median(denominator): > 1 when the numerator's side is slower."""
    return median(numerator) / median(denominator)


class PairedExperiment:
    """One family's paired experiment in a suite: its model, its pair count, the benchmark route
    and its note. `benchmark` gives pytest-benchmark's fixture, asked for only on first use."""

    def __init__(self, run: RunSession, family: str, benchmark: Callable[[], Any]) -> None:
        self.run = run
        self.family = family
        self.selection = run.selection
        self.options = run.selection.options
        self.device = run.selection.device
        self._benchmark_fixture = benchmark
        self._benchmark = None

    @property
    def benchmarking(self) -> bool:
        return self.options.benchmark

    @property
    def benchmark(self):
        """pytest-benchmark's fixture under --benchmark, else None."""
        if self.benchmarking and self._benchmark is None:
            self._benchmark = self._benchmark_fixture()
        return self._benchmark

    def model(self, preset: str | None = None, checkpoint_dir: str | None = None):
        """The family's model from the run's cache: the run's preset, first dtype, device, seed and
        checkpoint folder, unless `preset` or `checkpoint_dir` say otherwise."""
        options = self.options
        return self.run.ctx.models.get(
            self.family,
            options.preset if preset is None else preset,
            self.selection.dtypes[0],
            self.device,
            options.seed,
            options.checkpoint_dir if checkpoint_dir is None else checkpoint_dir,
        )

    def pairs(self, bench: int, quick: int) -> int:
        """The pair count: `bench` under --benchmark, else `quick`."""
        return bench if self.benchmarking else quick

    def measure(self, experiment: Callable[[], dict]) -> dict:
        """The experiment's result; under --benchmark timed once through pytest-benchmark (rounds=1)."""
        benchmark = self.benchmark
        return benchmark.pedantic(experiment, rounds=1) if benchmark is not None else experiment()

    def record(self, found: dict, note: str, name: str = "") -> None:
        """Under --benchmark: the result into the benchmark's extra_info, the note into the run's
        notes and (a RunSession) the result and note into its results file, under `name`."""
        benchmark = self.benchmark
        if benchmark is not None:
            benchmark.extra_info.update(found)
            record = getattr(self.run, "record_experiment", None)  # stand-in runs hold only notes
            if record is None:
                self.run.notes.append(note)
            else:
                record(self.family, name, found, note)
