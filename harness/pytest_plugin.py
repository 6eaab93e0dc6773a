"""The only bridge between pytest and the harness library.

Registers `--benchmark` and the harness options, parametrizes suites over the matrix,
routes each case's timed loop through pytest-benchmark, writes the run's results file and
prints the end-of-run table.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.errors import EXIT_HARNESS_ERROR, HarnessError
from harness.measure.env import apply_threads
from harness.measure.pairs import PairedExperiment
from harness.options import RunOptions, check_writable_dir, option_specs
from harness.publish.progress import ProgressDisplay
from harness.publish.summary import dropped_lines
from harness.session import RunSession
from harness.spec.matrix import Case
from harness.spec.selection import select

DEST_PREFIX = "harness_"


RUN_KEY = pytest.StashKey[RunSession]()


def _display(config: pytest.Config) -> ProgressDisplay | None:
    """Progress on pytest's terminal, past its output capture: a live line on a terminal, one
    line per case in a pipe or a CI log (harness/publish/progress.py)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return None
    writer = reporter._tw  # write_raw: the live line must not move pytest's idea of the cursor's column

    def write_raw(text: str) -> None:
        with capture.global_and_fixture_disabled():
            writer.write_raw(text, flush=True)

    def new_line() -> None:  # not reporter.ensure_newline(): that forgets the suite's path and prints it again per case
        if writer.width_of_current_line:
            with capture.global_and_fixture_disabled():
                writer.line()

    return ProgressDisplay(0, write_raw, new_line, live=bool(reporter.isatty()) and reporter.verbosity <= 0,
                           width=writer.fullwidth, color=reporter.hasmarkup)


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


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's, which reads benchmark_quiet once
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "family(name): the model family a suite module parametrizes over")
    values = {dest: config.getoption(DEST_PREFIX + dest) for dest, *_ in option_specs()}
    if values["benchmark"] and not values["pytest_benchmark_table"]:
        config.option.benchmark_quiet = True  # its table repeats the harness's e2e times; its JSON is unaffected
    try:
        selection = select(RunOptions(**values), torch.cuda.is_available())
        apply_threads(selection.options.threads)  # before any model runs, and before the environment records it
        run = RunSession(selection, Path(config.rootpath))
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
    # A suite whose every cell was dropped gets pytest's one "empty parameter set" item, whose case is no Case.
    cases = [case for item in session.items if "case" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")
             and isinstance(case := item.callspec.params["case"], Case)]
    run = session.config.stash[RUN_KEY]
    run.display = _display(session.config) or run.display
    run.plan(cases)
    run.case_nodeids = {item.nodeid for item in session.items if "case" in getattr(item, "fixturenames", ())}


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
    return lines + dropped_lines(run.dropped, full=bool(config.option.collectonly))


@pytest.fixture
def harness(request: pytest.FixtureRequest):
    """Call `harness(case)` in a suite: checks (and with --benchmark, measures) one case."""
    run = request.config.stash[RUN_KEY]
    measure = run.selection.options.benchmark

    def run_case(case):
        result = run.measure_case(case)
        record = result.to_record()
        run.add_record(record)
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


def _clear_live_line(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.display.clear()


# Before pytest itself writes (a suite's path when an item starts, a test's letter or percentage
# when a report comes, the summary), the live progress line leaves the screen; the next phase
# redraws it.
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    _clear_live_line(item.config)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """With --benchmark, a passed matrix case gets no letter of its own: its progress line (or the
    live bar) says it; failures keep theirs. Verbose runs keep pytest's own lines."""
    _clear_live_line(config)
    run = config.stash.get(RUN_KEY, None)
    if (run is None or not run.selection.options.benchmark or report.when != "call" or not report.passed
            or report.nodeid not in run.case_nodeids or config.get_verbosity() > 0):
        return None
    return "passed", "", ""


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    run.display.clear()
    for note in run.notes:
        terminalreporter.write_line(f"harness: {note}")
    if not run.records:
        return
    if not run.selection.options.benchmark:
        terminalreporter.write_line(run.quick_check_line())
        return
    width, color = max(160, terminalreporter._tw.fullwidth), terminalreporter.hasmarkup
    terminalreporter.write_sep("=", "harness")
    tables, summary = run.end_of_run(width, color, run.selection.options.tables)
    terminalreporter.write(tables)
    for line in summary:
        terminalreporter.write_line(line, red=_alarming(line), yellow="left out of ladders" in line or "no ladder" in line)
    if run.error:
        terminalreporter.write_line(f"harness error: {run.error}", red=True)


def _alarming(line: str) -> bool:
    return "regressed:" in line or "fails the gate" in line or line.startswith("  ") and ": error:" in line
