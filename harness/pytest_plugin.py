"""The only bridge between pytest and the harness library.

Registers `--benchmark` and the harness options, parametrizes suites over the matrix,
routes each case's timed loop through pytest-benchmark, writes the run's results file and
prints the end-of-run table.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.baselines import load_baselines, update_baselines
from harness.bench import RunContext, execute, plain_loop
from harness.compare import compare_records, regressions
from harness.env import environment
from harness.errors import EXIT_HARNESS_ERROR, EXIT_REGRESSION, HarnessError
from harness.machine import machine_class
from harness.options import RunOptions, check_writable_dir, option_specs
from harness.records import ResultsFile, new_results_path
from harness.report import render_text, render_text_table, rows
from harness.selection import Selection, select
from harness.ladder import summarize
from harness.ladder_report import chart_stem, write_ladder
from harness.verdict_report import markdown, render_verdicts, write_step_summary

DEST_PREFIX = "harness_"


class HarnessRun:
    """State of one pytest session: the selection, shared run context, records so far."""

    def __init__(self, selection: Selection, config: pytest.Config) -> None:
        self.selection = selection
        self.config = config
        self.ctx = RunContext(selection.options, selection.device, progress=self.progress)
        self.dropped: dict[str, str] = {}
        self.records: list[dict] = []
        self.results: ResultsFile | None = None
        self.notes: list[str] = []
        self.total = 0
        self.environment: dict = {}
        self.machine = ""
        self.baselines: dict[str, dict] = {}
        self.verdicts: list = []
        self.error = ""

    def progress(self, message: str) -> None:
        if not self.selection.options.benchmark:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"  [{len(self.records) + 1}/{self.total}] {message}")

    def open_results(self) -> None:
        """Results file, machine class and baselines: all checked before any model is built."""
        options = self.selection.options
        self.environment = environment(self.selection.device, Path(self.config.rootpath))
        self.machine = machine_class(self.environment)
        recorded = {**vars(options), "dtypes": list(self.selection.dtypes), "machine_class": self.machine}
        self.results = ResultsFile(new_results_path(Path(options.results_dir)), self.environment, recorded)
        self.baselines = load_baselines(Path(options.baseline_dir), self.machine, self.selection.families)

    def finish(self) -> int | None:
        """Update baselines or gate against them; returns an exit status to impose, if any."""
        options = self.selection.options
        if options.update_baselines:
            changes = update_baselines(Path(options.baseline_dir), self.machine, self.records, self.environment)
            self.notes += [f"baseline {path}: {added} case(s) added, {replaced} replaced" for path, added, replaced in changes]
            return None
        self.verdicts = compare_records(
            self.records, self.baselines, self.environment, self.selection.policy, self.selection.allowed_env
        )
        return EXIT_REGRESSION if regressions(self.verdicts) else None


RUN_KEY = pytest.StashKey[HarnessRun]()


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
        run = HarnessRun(selection, config)
        if selection.options.benchmark:
            check_writable_dir(Path(selection.options.results_dir))
            run.open_results()
        if selection.options.trace_dir:
            check_writable_dir(Path(selection.options.trace_dir))
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


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    config.stash[RUN_KEY].total = sum(1 for item in items if "case" in getattr(item, "fixturenames", ()))


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
        loop = plain_loop
        benchmark = None
        if measure:
            benchmark = request.getfixturevalue("benchmark")
            loop = lambda iteration, rounds, setup: benchmark.pedantic(iteration, setup=setup, rounds=rounds)
        result = execute(case, run.ctx, measure, loop)
        record = result.to_record()
        run.records.append(record)
        if benchmark is not None:
            benchmark.extra_info.update(record)
            run.results.add(record)
        if result.status != "ok":
            pytest.fail(f"{case.id}: {result.status}: {result.message}", pytrace=False)
        return result

    return run_case


@pytest.fixture
def harness_run(request: pytest.FixtureRequest) -> HarnessRun:
    """The session's selection and shared context, for suites that are not matrix cases."""
    return request.config.stash[RUN_KEY]


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
    if run.selection.options.benchmark:
        width = max(160, terminalreporter._tw.fullwidth)
        text = render_text(rows(run.records), width=width, color=terminalreporter.hasmarkup)
        terminalreporter.write_sep("=", "harness")
        terminalreporter.write(text)
        terminalreporter.write_line(f"harness: results written to {run.results.path}")
        _write_ladder(terminalreporter, run, width)
        if run.verdicts:
            title = f"verdicts vs baselines ({run.machine})"
            verdict_table = render_verdicts(run.verdicts, title)
            terminalreporter.write(render_text_table(verdict_table, width=width, color=terminalreporter.hasmarkup))
            written = write_step_summary(markdown(run.verdicts, title))
            if written:
                terminalreporter.write_line(f"harness: verdicts appended to {written}")
        if run.error:
            terminalreporter.write_line(f"harness error: {run.error}", red=True)
    else:
        matched = sum(1 for record in run.records if record["outputs_match"])
        lossy = sum(1 for record in run.records if record["outputs_match"] and record.get("tolerance"))
        within = f" ({lossy} of them lossy stacks within their stated tolerance)" if lossy else ""
        terminalreporter.write_line(f"harness: {len(run.records)} case(s) checked, {matched} matched the baseline outputs{within}")


def _write_ladder(terminalreporter, run: HarnessRun, width: int) -> None:
    """The lever ladder of this run: table in the terminal, chart beside the results file."""
    try:
        written = write_ladder(summarize(run.records), chart_stem(run.results.path))
    except (OSError, ValueError) as exc:  # the results are safe on disk; say why the chart is not
        terminalreporter.write_line(f"harness: no ladder chart: {exc}", red=True)
        return
    if written is None:
        return
    table, paths = written
    terminalreporter.write(render_text_table(table, width=width, color=terminalreporter.hasmarkup))
    terminalreporter.write_line(f"harness: ladder chart written to {', '.join(str(p) for p in paths)}")
