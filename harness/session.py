"""One run of the harness: the selection, the shared run context, the results file, the
baselines, and at the end the gate or the baseline update and the summary texts. Plain Python:
the pytest plugin (harness/pytest_plugin.py) drives it, and tests can drive it without pytest."""

from __future__ import annotations

from pathlib import Path

from harness.analyse.gate import compare_records, gate_status
from harness.analyse.ladder import LadderSummary, summarize
from harness.errors import HarnessError
from harness.measure.case import RunContext
from harness.measure.env import environment
from harness.measure.isolation import RecordedResult, measure_isolated
from harness.measure.record import CaseResult
from harness.measure.rounds import run_figures
from harness.measure.workload import WorkloadRun, execute
from harness.publish.ladder import chart_stem, render_ladders, write_ladder
from harness.publish.progress import ProgressDisplay
from harness.publish.run_report import write_run_report
from harness.publish.summary import counts_line, failed_lines, files_lines, ladder_lines, verdict_lines
from harness.publish.terminal import render_text, render_text_table, rows
from harness.publish.verdicts import markdown, render_verdicts, write_step_summary
from harness.spec.matrix import Case
from harness.spec.selection import Selection
from harness.store.baselines import load_baselines, update_baselines
from harness.store.machine import machine_class
from harness.store.records import ResultsFile, new_results_path, write_json_atomic


class RunSession:
    """State of one run: the selection, shared run context, records so far."""

    def __init__(self, selection: Selection, rootpath: Path, display: ProgressDisplay | None = None) -> None:
        self.selection = selection
        self.rootpath = rootpath
        # Where progress goes (the plugin: its terminal reporter); none: nowhere.
        self.display = display or ProgressDisplay(0, lambda text: None, lambda: None)
        self.ctx = RunContext(selection.options, selection.device, progress=self.progress)
        self.dropped: dict[str, str] = {}
        self.case_nodeids: set[str] = set()  # the matrix cases' pytest ids: a passed one gets no letter (its line says it)
        self.records: list[dict] = []
        self.results: ResultsFile | None = None
        self.notes: list[str] = []
        self.experiments: list[dict] = []  # the paired experiments' figures (harness.measure.pairs)
        self.total = 0
        self.environment: dict = {}
        self.machine = ""
        self.baselines: dict[str, dict] = {}
        self.verdicts: list = []
        self.error = ""
        self.planned: dict[str, list[Case]] = {}  # workload id -> its selected cases, in run order
        self.measured: dict[str, CaseResult | RecordedResult] = {}  # results of a workload's cases not yet handed out

    def plan(self, cases: list[Case]) -> None:
        """The cases this run will ask for (after -k and --stacks): measure_case measures each
        workload's together, in interleaved rounds."""
        self.planned = {}
        for case in cases:
            self.planned.setdefault(case.workload_id, []).append(case)
        self.total = len(cases)
        self.display.start(self.total)

    def measure_case(self, case: Case) -> CaseResult | RecordedResult:
        """The case's result: a quick check, or (with --benchmark) its share of its workload's
        interleaved rounds, measured when the workload's first case is asked for."""
        options = self.selection.options
        if not options.benchmark:
            return measure_isolated([case], self.ctx, False)[case.id] if options.isolate else execute(case, self.ctx, measure=False)
        if case.id not in self.measured:
            group = self.planned.get(case.workload_id, [])
            cases = group if case in group else [case]
            self.measured.update(measure_isolated(cases, self.ctx, True) if options.isolate else WorkloadRun(cases, self.ctx).run())
        return self.measured.pop(case.id)

    def progress(self, message: str) -> None:
        if self.selection.options.benchmark:
            self.display.phase(message)

    def add_record(self, record: dict) -> None:
        """A case's record, handed to pytest: kept for the end of the run, and counted as done."""
        self.records.append(record)
        if self.selection.options.benchmark:
            self.display.case_done(record, finished=len(self.records) + len(self.measured))

    def open_results(self) -> None:
        """Results file, machine class and baselines: all checked before any model is built."""
        options = self.selection.options
        self.environment = environment(self.selection.device, self.rootpath)
        self.machine = machine_class(self.environment)
        recorded = {**vars(options), "dtypes": list(self.selection.dtypes), "machine_class": self.machine}
        self.results = ResultsFile(new_results_path(Path(options.results_dir)), self.environment, recorded)
        self.baselines = load_baselines(Path(options.baseline_dir), self.machine, self.selection.families)

    @property
    def results_path(self) -> Path:
        """The results file's path: a benchmark run opens it before any case runs."""
        if self.results is None:
            raise RuntimeError("no results file yet: open_results() comes first")
        return self.results.path

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
        return gate_status(self.verdicts, self.selection.allowed_unjudged)

    def record_experiment(self, family: str, name: str, figures: dict, note: str) -> None:
        """A paired experiment's note into the run's notes, and its figures into the results file
        under "experiments" (beside "cases", which stays case records only), written at once."""
        self.notes.append(note)
        self.experiments.append({"family": family, "name": name, "note": note, "figures": figures})
        if self.results is None:
            return
        if "experiments" not in self.results.data:
            self.notes.append(f"experiment figures written to {self.results.path} (\"experiments\")")
        self.results.data["experiments"] = self.experiments
        write_json_atomic(self.results.path, self.results.data)

    def rounds_line(self) -> str:
        """How the run's workloads were measured: rounds, contended and re-run ones, contended
        cases (left out of ladders and verdicts) and workloads measured one stack at a time."""
        found = run_figures(self.records)
        if not found["workloads"]:
            return ""
        line = (f"harness: {found['workloads']} workload(s) in interleaved rounds: {found['rounds']} rounds run, "
                f"{found['contended']} found contended, {found['reruns']} re-run")
        if found["sequential"]:
            line += f"; {found['sequential']} measured one stack after another (too large to keep warm together)"
        if cases := found["contended_cases"]:
            line += f"; {len(cases)} case(s) contended, left out of ladders and verdicts: {', '.join(cases)}"
        return line

    def quick_check_line(self) -> str:
        matched = sum(1 for record in self.records if record["outputs_match"])
        lossy = sum(1 for record in self.records if record["outputs_match"] and record.get("tolerance"))
        within = f" ({lossy} of them lossy stacks within their stated tolerance)" if lossy else ""
        return f"harness: {len(self.records)} case(s) checked, {matched} matched the baseline outputs{within}"

    @property
    def verdicts_title(self) -> str:
        return f"verdicts vs baselines ({self.machine})"

    def end_of_run(self, width: int, color: bool, tables: bool) -> tuple[str, list[str]]:
        """The end of a benchmark run: the files written, then every table (with `tables`) and the
        one-screen summary; the ladder is summarized once for the chart, the tables and the summary."""
        ladder = summarize(self.records)
        written = self.write_outputs(ladder)
        return (self.tables_text(ladder, width, color) if tables else ""), self.summary_lines(ladder, written)

    def write_outputs(self, ladder: LadderSummary) -> list[str]:
        """The run's files beside its results file (the ladder chart, the HTML report) and the
        verdicts' Markdown in the CI step summary; a line for each, saying where it went (or why not)."""
        lines = []
        try:
            written = write_ladder(ladder, chart_stem(self.results_path))
        except (OSError, ValueError) as exc:  # the results are safe on disk; say why the chart is not
            written, lines = None, [f"no ladder chart: {exc}"]
        if written is not None and written[1]:
            lines.append(f"ladder chart written to {', '.join(str(p) for p in written[1])}")
        try:
            page = write_run_report(self.results_path, self.records, self.verdicts, f"harness results ({self.machine})")
            lines.append(f"HTML report of the run written to {page}")
        except (HarnessError, OSError, ValueError) as exc:  # the results are safe on disk; say why the page is not
            lines.append(f"no HTML report: {exc}")
        if self.verdicts:
            found = write_step_summary(markdown(self.verdicts, self.verdicts_title, self.selection.allowed_unjudged))
            if found:
                lines.append(f"verdicts appended to {found}")
        return lines

    def summary_lines(self, ladder: LadderSummary, written: list[str]) -> list[str]:
        """The end of the run on one screen (harness/publish/summary.py); the tables: tables_text."""
        lines = [counts_line(self.records, len(self.dropped)), *failed_lines(self.records)]
        lines += ladder_lines(ladder)
        lines += verdict_lines(self.verdicts, tuple(self.selection.allowed_unjudged), f"baselines ({self.machine})")
        if line := self.rounds_line():
            lines.append(line)
        return lines + files_lines(self.results_path, written)

    def tables_text(self, ladder: LadderSummary, width: int, color: bool) -> str:
        """Every table of the run (--tables; `harness show` renders the same from the file)."""
        text = render_text(rows(self.records), width=width, color=color)
        if ladder.per_family or ladder.missing:
            text += render_text_table(render_ladders(ladder.ladders, ladder.per_family, ladder.overall, ladder.missing),
                                      width=width, color=color)
        if self.verdicts:
            text += render_text_table(render_verdicts(self.verdicts, self.verdicts_title, self.selection.allowed_unjudged),
                                      width=width, color=color)
        return text
