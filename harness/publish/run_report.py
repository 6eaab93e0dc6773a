"""The run report: one self-contained HTML page beside each results file (run-....json ->
run-....html). The run's environment and case counts, a sortable table per family, the lever
evidence, the lever ladder (chart and table), where the time goes (operator categories per phase
and the idle share, for the profiled cases) and the verdicts. Charts are embedded as SVG data:
URIs and the style and sorting script are inline: it loads nothing (harness/publish/html_parts.py).

The run writes it at its end (write_run_report); `harness page RESULTS.json` builds it again from
a recorded results file alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.analyse.gate import MetricResult
from harness.analyse.intervals import CONFIDENCE
from harness.errors import HarnessError
from harness.publish.characterize import breakdown, by_family, family_title, idle_by_stack, usable
from harness.publish.charts import chart_data
from harness.publish.html_parts import figure_html, note_html, page_html, svg_uri
from harness.publish.row import Row
from harness.publish.run_report_facts import facts_html
from harness.publish.run_report_tables import evidence_table, family_tables, ladder_table, profile_table, verdicts_html
from harness.publish.terminal import rows
from harness.store.records import SHOW_KEYS, load_results, write_text_atomic
from harness.store.result_sets import check_output

LEVEL = f"{100 * CONFIDENCE:.0f}% CI"
NOT_STORED = ("no verdicts: they are judged at the end of the run against the committed baselines and are not stored "
              "in the results file, so a page built from the file alone has none (harness compare OLD NEW judges "
              "this run against another)")


def report_path(results_path: Path) -> Path:
    """The page beside its results file: run-....json -> run-....html."""
    return Path(results_path).with_suffix(".html")


def write_run_report(results_path: Path, records: list[dict], verdicts: list[MetricResult] | None, title: str) -> Path:
    """Write the report of a run whose results file is `results_path` (its environment and options
    are read from there; `records` are the run's cases) beside it, atomically, and return its path.
    `verdicts`: the run's harness.analyse.gate.compare_records results; None where they are not
    known. Raises HarnessError (the results file unreadable) or OSError (the page unwritable)."""
    results_path = Path(results_path)
    data = load_results(results_path)
    target = report_path(results_path)
    write_text_atomic(target, report_html(results_path.name, data, records, verdicts, title))
    return target


def report_html(source: str, data: Mapping, records: Sequence[Mapping], verdicts: list[MetricResult] | None,
                title: str) -> str:
    table_rows = rows(records)
    sections = [
        ("run", "The run", facts_html(source, data, records)),
        ("families", "Results per family", family_tables(table_rows)),
        ("evidence", "Lever evidence", evidence_table(records, table_rows)),
        ("ladder", "Lever ladder", ladder_section(records)),
        ("breakdown", "Where the time goes", breakdown_section(records, table_rows)),
        ("verdicts", "Verdicts", verdicts_section(verdicts, data.get("options") or {})),
    ]
    return page_html(title, sections)


def ladder_section(records: Sequence[Mapping]) -> str:
    """The chart and the table of the run's ladders, or why there is none."""
    from harness.analyse.ladder import summarize
    from harness.publish.ladder import ladder_figure

    try:
        summary = summarize(records)
    except (HarnessError, ValueError) as exc:  # a stack of levers this harness does not know, say
        return note_html(f"no ladder: {exc}")
    except KeyError as exc:  # a hand-made file whose cases lack a key only the ladder reads (task)
        return note_html(f"no ladder: a case has no {exc} key")
    if not summary.ladders and not summary.missing:
        return note_html("no ladder: no workload has its baseline stack and a second stack measured, ok and matching "
                         "(one stack per workload in this run, or every other stack failed)")
    parts = []
    if summary.ladders:
        caption = (f"Each workload's cumulative e2e speed-up over its baseline stack at each step (Hodges-Lehmann "
                   f"{LEVEL}), and each family's combined speed-up (geometric mean).")
        figure = ladder_figure(summary.ladders, summary.per_family, summary.overall)
        parts.append(figure_html("ladder-chart", "Lever ladder", svg_uri(figure), caption))
    else:
        parts.append(note_html("no ladder chart: no workload's baseline could be a step (the table says why)"))
    parts.append(ladder_table(summary, f"lever ladder: e2e speed-up per step and over the baseline ({LEVEL})"))
    return "\n".join(parts)


def breakdown_section(records: Sequence[Mapping], table_rows: Sequence[Row]) -> str:
    """Per family, the operator categories of each profiled phase (a bar per case, idle hatched);
    the idle share per phase and stack; then the same shares as a table. Only ok cases are drawn."""
    from harness.publish.characterize_charts import breakdown_figure, idle_figure

    families = by_family(usable(records))
    if not families:
        return note_html("nothing to chart: no case ended ok")
    parts = []
    for family, group in families.items():
        profiled = [record for record in group if chart_data(record)]
        if not profiled:
            parts.append(note_html(f"{family}: no operator-category chart: no ok {family} case has a profiled "
                                   "iteration recorded"))
            continue
        caption = (f"Operator-category share of each profiled phase's wall time (idle hatched), {len(profiled)} "
                   f"{family} case(s).")
        figure = breakdown_figure(family_title(family, profiled), breakdown(profiled))
        parts.append(figure_html(f"breakdown-{family}", f"Where the time goes: {family}", svg_uri(figure), caption))
    idle = {family: found for family, group in families.items() if (found := idle_by_stack(group))}
    if idle:
        caption = ("Share of each profiled phase's wall time in which the device ran nothing, median over workloads "
                   f"per stack ({', '.join(idle)}).")
        parts.append(figure_html("idle", "Idle share per phase", svg_uri(idle_figure(idle)), caption))
    else:
        parts.append(note_html("no idle chart: no ok case has a reliable idle share recorded"))
    parts.append(profile_table(table_rows))
    return "\n".join(parts)


def verdicts_section(verdicts: list[MetricResult] | None, options: Mapping) -> str:
    if verdicts:
        return verdicts_html(verdicts, allowed_of(options))
    if verdicts is None:
        return note_html(NOT_STORED)
    if options.get("update_baselines"):
        return note_html("no verdicts: this run updated the baselines (--update-baselines) instead of judging against them")
    return note_html("no verdicts: no case was compared with a baseline")


def allowed_of(options: Mapping) -> tuple[str, ...]:
    """The run's --allow-unjudged kinds, as its results file recorded them."""
    from harness.spec.selection import allowed_unjudged_kinds

    try:
        return allowed_unjudged_kinds(str(options.get("allow_unjudged") or ""))
    except HarnessError:
        return ()


def write_page(results: Path, out: str | None, force: bool) -> Path:
    """`harness page`: the report of a recorded run, without verdicts (the file holds none)."""
    data = load_results(results, SHOW_KEYS)  # what the tables read without a default, as `harness show`
    target = Path(out) if out else report_path(results)
    if target.is_dir():
        target = target / report_path(results).name
    check_output(target, [results], force, "--out" if out else "the page")
    try:
        text = report_html(results.name, data, data["cases"], None, f"harness run {results.stem}")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a value load_results does not check
        raise HarnessError(f"{results}: a value the page cannot render ({type(exc).__name__}: {exc})") from None
    write_text_atomic(target, text)
    return target


def add_page_command(commands) -> None:
    """`harness page RESULTS.json [--out PATH] [--force]` (harness/cli.py lists it with the other
    rendering commands)."""
    page = commands.add_parser("page", help="the HTML report of a recorded run: one self-contained page")
    page.add_argument("results", help="a results file written by a --benchmark run")
    page.add_argument("--out", help="file or folder for the page (default: beside the results file, run-....html)")
    page.add_argument("--force", action="store_true", help="replace an existing page")

    def run(args) -> int:
        print(f"page written to {write_page(Path(args.results), args.out, args.force)}")
        return 0

    page.set_defaults(run=run)
