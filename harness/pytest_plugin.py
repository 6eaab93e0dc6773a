"""The only bridge between pytest and the harness library.

Registers `--benchmark` and the harness options, parametrizes suites over the matrix,
routes each case's timed loop through pytest-benchmark, writes the run's results file and
prints the end-of-run table.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

from harness.errors import EXIT_HARNESS_ERROR, HarnessError
from harness.measure.env import apply_threads
from harness.measure.pairs import PairedExperiment
from harness.options import RunOptions, check_writable_dir, option_specs
from harness.session import RunSession
from harness.spec.selection import select

DEST_PREFIX = "harness_"


RUN_KEY = pytest.StashKey[RunSession]()


def _write_progress(config: pytest.Config, line: str) -> None:
    """A progress line on the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "benchmark harness (harness/options.py holds the defaults)")
    for dest, flag, default, help_text in option_specs():
        if isinstance(default, bool):
            group.addoption(flag, action="store_true", default=default, dest=DEST_PREFIX + dest, help=help_text)
        else:
            group.addoption(
                flag, type=type(default), default=default, dest=DEST_PREFIX + dest,
                help=f"{help_text} (default: {default!r})",
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "family(name): the model family a suite module parametrizes over")
    values = {dest: config.getoption(DEST_PREFIX + dest) for dest, *_ in option_specs()}
    try:
        selection = select(RunOptions(**values), torch.cuda.is_available())
        apply_threads(selection.options.threads)  # before any model runs, and before the environment records it
        run = RunSession(selection, Path(config.rootpath), partial(_write_progress, config))
        if selection.options.benchmark:
            check_writable_dir(Path(selection.options.results_dir))
            run.open_results()
        if selection.options.trace_dir:
            check_writable_dir(Path(selection.options.trace_dir), "trace directory")
    except HarnessError as exc:
        pytest.exit(f"harness error: {exc}", returncode=EXIT_HARNESS_ERROR)
    config.stash[RUN_KEY] = run


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("family")
    if marker is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: a suite using `case` needs @pytest.mark.family(...)")
    run = metafunc.config.stash[RUN_KEY]
    family = marker.args[0]
    if family not in run.selection.families:
        metafunc.parametrize("case", [], ids=[])
        return
    cases, dropped = run.selection.expand(family)
    run.dropped.update((cell.case_id, cell.reason) for cell in dropped)
    metafunc.parametrize("case", cases, ids=[case.id for case in cases])


def pytest_collection_finish(session: pytest.Session) -> None:
    """The cases left after every deselection (-k, --stacks): each workload's are measured together."""
    cases = [item.callspec.params["case"] for item in session.items
             if "case" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")]
    session.config.stash[RUN_KEY].plan(cases)


def feed_benchmark(benchmark, samples_s: list[float]) -> None:
    """pytest-benchmark's statistics of a case from the harness's own timed samples (e2e, one
    per iteration): the iterations ran in the workload's interleaved rounds, beside the other
    stacks', so no single pedantic() call could time them. pytest-benchmark 5 has no public way
    to add raw durations; its stats object (`_make_stats`) is what pedantic() itself fills."""
    if benchmark.disabled:
        return
    if not samples_s:  # a failed or crashed case: nothing timed, and no "fixture was not used" warning for it
        benchmark.skipped = True
        return
    make_stats = getattr(benchmark, "_make_stats", None)
    if make_stats is None:
        raise HarnessError("this pytest-benchmark has no _make_stats: the harness supports pytest-benchmark 5")
    stats = make_stats(1)
    for seconds in samples_s:
        stats.update(seconds)
    benchmark._mode = "harness interleaved rounds"  # used: no "fixture was not used" warning


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    run = config.stash[RUN_KEY]
    selection = run.selection
    lines = [
        f"harness: device {selection.device}, preset {selection.options.preset}, "
        f"dtypes {','.join(selection.dtypes)}, mode {'benchmark' if selection.options.benchmark else 'quick check'}"
    ]
    if selection.options.benchmark:
        action = "updating baselines" if selection.options.update_baselines else f"{len(run.baselines)} baseline case(s)"
        lines.append(f"harness: machine class {run.machine}, {action} in {selection.options.baseline_dir}")
    if run.dropped:
        lines.append(f"harness: {len(run.dropped)} matrix cell(s) dropped at expansion:")
        lines += [f"  {case_id}: {reason}" for case_id, reason in sorted(run.dropped.items())]
    return lines


@pytest.fixture
def harness(request: pytest.FixtureRequest):
    """Call `harness(case)` in a suite: checks (and with --benchmark, measures) one case."""
    run = request.config.stash[RUN_KEY]
    measure = run.selection.options.benchmark

    def run_case(case):
        result = run.measure_case(case)
        record = result.to_record()
        run.records.append(record)
        if measure:
            benchmark = request.getfixturevalue("benchmark")
            feed_benchmark(benchmark, record["e2e_s"])
            benchmark.extra_info.update(record)
            run.results.add(record)
        if result.status not in ("ok", "contended"):  # contended: the machine's doing, said in the tables
            pytest.fail(f"{case.id}: {result.status}: {result.message}", pytrace=False)
        return result

    return run_case


@pytest.fixture
def harness_run(request: pytest.FixtureRequest) -> RunSession:
    """The session's selection and shared context, for suites that are not matrix cases."""
    return request.config.stash[RUN_KEY]


@pytest.fixture
def harness_experiment(request: pytest.FixtureRequest, harness_run: RunSession):
    """Call `harness_experiment(family)` in a suite for a paired experiment of that family
    (harness/measure/pairs.py): skips the test unless the family is selected."""

    def start(family: str) -> PairedExperiment:
        __tracebackhide__ = True  # a skip is reported at the suite's line, not here
        if family not in harness_run.selection.families:
            pytest.skip(f"{family} is not selected (--families)")
        return PairedExperiment(harness_run, family, lambda: request.getfixturevalue("benchmark"))

    return start


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.selection.options.benchmark or not run.records:
        return
    try:
        status = run.finish()
    except HarnessError as exc:
        run.error = str(exc)
        session.exitstatus = EXIT_HARNESS_ERROR
        return
    # A failing test (exit 1) stays the headline; a clean run with a regression gets its own status.
    if status is not None and exitstatus == 0:
        session.exitstatus = status


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    for note in run.notes:
        terminalreporter.write_line(f"harness: {note}")
    if not run.records:
        return
    if not run.selection.options.benchmark:
        terminalreporter.write_line(run.quick_check_line())
        return
    width, color = max(160, terminalreporter._tw.fullwidth), terminalreporter.hasmarkup
    terminalreporter.write_sep("=", "harness")
    terminalreporter.write(run.results_text(width, color))
    terminalreporter.write_line(f"harness: results written to {run.results_path}")
    if line := run.rounds_line():
        terminalreporter.write_line(line, yellow="left out of ladders" in line)
    for text, lines in (run.ladder_text(width, color), run.verdicts_text(width, color)):
        terminalreporter.write(text)
        for line in lines:
            terminalreporter.write_line(line, red=line.startswith("harness: no "))
    if run.error:
        terminalreporter.write_line(f"harness error: {run.error}", red=True)
