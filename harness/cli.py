"""`harness` command line: inspect the matrix and render recorded results.

Measuring happens under pytest (`pytest suites/ --benchmark`), in `harness ab`'s two worker
processes (harness/ab/), and in `harness smoke` (harness/smoke/: every CUDA path once); no other
command measures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import EXIT_HARNESS_ERROR, HarnessError
from harness.options import RunOptions, option_specs
from harness.publish.console import wide_console
from harness.store.result_sets import check_output, load_result_set, result_files

# Each subcommand imports what it needs inside its own function. Only `matrix` imports torch (it
# asks whether CUDA is there, then expands the matrix); the others read results files and import
# neither torch nor transformers (tests/test_layering.py).

MATRIX_OPTIONS = ("preset", "device", "dtype", "families", "stacks", "batch_sizes")
GATE_OPTIONS = ("alpha", "thresholds", "allow_env_diff", "allow_unjudged", "normalize")


def cmd_matrix(args: argparse.Namespace) -> int:
    import torch

    from harness.spec.selection import select

    values = {name: getattr(args, name) for name in MATRIX_OPTIONS}
    selection = select(RunOptions(**values), torch.cuda.is_available())
    cases, dropped = selection.expand_all()
    print(f"# device {selection.device}, preset {selection.options.preset}, dtypes {','.join(selection.dtypes)}")
    print_list(f"{len(cases)} case(s):", [case.id for case in cases])
    print_list(f"{len(dropped)} dropped at expansion:", [f"{cell.case_id}: {cell.reason}" for cell in dropped])
    return 0


def print_list(heading: str, lines: Sequence[str]) -> None:
    print(heading)
    for line in lines:
        print(f"  {line}")


def cmd_show(args: argparse.Namespace) -> int:
    from harness.analyse.ladder import summarize
    from harness.publish.ladder import render_ladders
    from harness.publish.profile_table import render_profile
    from harness.publish.terminal import render_tables, rows
    from harness.store.records import SHOW_KEYS, load_results

    console = wide_console()
    loaded = [(path, load_results(path, SHOW_KEYS)) for path in args.results]  # every file checked first
    for path, data in loaded:
        table_rows = rows(data["cases"])
        for table in render_tables(table_rows, title=str(path)):
            console.print(table)
        profile = render_profile(table_rows)
        if profile is not None:
            console.print(profile)
        # The ladder table (`harness ladder` also draws its chart); files from before cases had a task have none.
        found = summarize(data["cases"]) if all("task" in case for case in data["cases"]) else None
        if found and (found.ladders or found.missing):
            console.print(render_ladders(found.ladders, found.per_family, found.overall, found.missing))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.publish.charts import render_all
    from harness.store.records import load_results

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {str(out)!r} is a file; give a folder for the charts")
    loaded = [(path, load_results(path, ("id",))) for path in args.results]
    for path, data in loaded:
        written, skipped = render_all(data["cases"], out)
        missing = [f"{case_id}: no profiled iteration recorded (quick check, or an error)" for case_id in skipped]
        print_list(f"{path}: {len(written)} file(s) written to {args.out}", missing)
    return 0


def cmd_ladder(args: argparse.Namespace) -> int:
    from harness.analyse.ladder import summarize
    from harness.publish.ladder import chart_stem, write_ladder
    from harness.store.records import LADDER_KEYS

    console = wide_console()
    summaries = {}
    loaded = [(path, load_result_set(path, LADDER_KEYS)[0]) for path in args.results]
    for path, records in loaded:
        target = Path(path)
        stem = chart_stem(Path(args.out) / f"{target.stem}.json" if args.out else target)
        stem.parent.mkdir(parents=True, exist_ok=True)
        summary = summarize(records)
        written = write_ladder(summary, stem)
        if written is None:
            print(f"{path}: no workload has a measured baseline and a second step")
            continue
        summaries[path] = summary
        table, paths = written
        console.print(table)
        print(f"{path}: ladder chart written to {', '.join(str(p) for p in paths)}")
    if args.across_runs:
        _print_across_runs(console, summaries)
    return 0


def _print_across_runs(console, summaries: dict) -> None:
    """Repeated runs of one matrix: the between-run spread of the combined speed-ups."""
    from harness.analyse.ladder import across_runs
    from harness.publish.ladder import render_across_runs

    if len(summaries) < 2:
        raise HarnessError(f"--across-runs needs two or more runs with a ladder; got {len(summaries)}")
    try:
        found = across_runs(list(summaries.values()))
    except ValueError as exc:
        raise HarnessError(f"no ladder across runs of {', '.join(summaries)}: {exc}") from exc
    console.print(render_across_runs([Path(path).stem for path in summaries], found))


def gate_policy(args: argparse.Namespace, new_environment: dict):
    """The same gate as a pytest run on the machine that recorded NEW (thresholds per device); the
    numbers are checked as the plugin checks them (alpha in (0, 1), thresholds finite and positive),
    and so are the allowances (--allow-env-diff fields, --allow-unjudged kinds)."""
    from harness.spec.selection import allowed_env_fields, allowed_unjudged_kinds, device_policy

    allowed = allowed_env_fields(args.allow_env_diff), allowed_unjudged_kinds(args.allow_unjudged)
    device = "cuda" if new_environment.get("gpu_count") else "cpu"
    return device_policy(device, args.alpha, args.normalize, args.thresholds), *allowed


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.analyse.gate import compare_records, gate_status
    from harness.publish.verdicts import markdown, render_verdicts, write_step_summary
    from harness.store.baselines import case_entry
    from harness.store.records import COMPARE_KEYS

    if args.markdown:
        inputs = [*result_files(args.old), *result_files(args.new)]
        check_output(Path(args.markdown), inputs, args.force, "--markdown")
    old_records, old_env = load_result_set(args.old, COMPARE_KEYS)
    new_records, new_env = load_result_set(args.new, COMPARE_KEYS)
    policy, allowed_env, allowed_unjudged = gate_policy(args, new_env)
    baselines = {r["id"]: case_entry(r, old_env) for r in old_records if r.get("status") == "ok"}
    results = compare_records(new_records, baselines, new_env, policy, allowed_env)
    title = f"{args.new} vs {args.old}"
    wide_console().print(render_verdicts(results, title, allowed_unjudged))
    text = markdown(results, title, allowed_unjudged)
    if args.markdown:
        from harness.store.records import write_text_atomic

        write_text_atomic(Path(args.markdown), text)
    write_step_summary(text)
    return gate_status(results, allowed_unjudged) or 0


def cmd_baseline_update(args: argparse.Namespace) -> int:
    from harness.store.baselines import baseline_path, load_baseline, update_baselines
    from harness.store.machine import machine_class
    from harness.store.records import BASELINE_KEYS

    # Every results file, and every baseline file they would merge into, is read and checked before
    # any baseline is written.
    loaded = [load_result_set(path, BASELINE_KEYS) for path in args.results]
    for records, environment in loaded:
        for family in sorted({record["family"] for record in records if record["status"] == "ok"}):
            target = baseline_path(Path(args.baseline_dir), machine_class(environment), family)
            if target.exists():
                load_baseline(target)
    for records, environment in loaded:
        machine = machine_class(environment)
        for target, added, replaced in update_baselines(Path(args.baseline_dir), machine, records, environment):
            print(f"{target}: {added} case(s) added, {replaced} replaced (machine class {machine})")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from harness.publish.asv import group_results, write_asv_results
    from harness.publish.asv_run import EXIT_PUBLISHED_WITH_SKIPS, load_config, preview, publish

    config = load_config(args.config)
    groups, notes, skipped = group_results(args.results, allow_dirty=args.allow_dirty, repo=config.repo)
    for note in notes:
        print(note)
    for item in skipped:
        print(f"harness: warning: skipped {item.reason}", file=sys.stderr)
    if not groups:
        raise HarnessError(f"nothing to publish: all {len(skipped)} results file(s) were skipped (warnings above)")
    for path in write_asv_results(config, groups):
        print(f"wrote {path}")
    publish(config)
    print(f"HTML history in {config.html_dir}")
    if skipped:
        print_list(f"harness: {len(skipped)} results file(s) skipped, not in the history "
                   f"(exit {EXIT_PUBLISHED_WITH_SKIPS}):", [str(item.path) for item in skipped])
    status = preview(config, args.port) if args.preview else 0
    return status or (EXIT_PUBLISHED_WITH_SKIPS if skipped else 0)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="harness", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    for add in (add_reading_commands, add_gating_commands, add_rendering_commands):
        add(commands)
    from harness.ab.command import add_ab_command

    add_ab_command(commands, add_run_options)
    from harness.smoke.command import add_smoke_command

    add_smoke_command(commands)
    return top


def add_run_options(command: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """The run options among `names`, with the same flags, defaults and help as under pytest."""
    for dest, flag, default, help_text in option_specs():
        if dest in names:
            command.add_argument(flag, dest=dest, default=default, help=f"{help_text} (default: {default!r})")


def add_reading_commands(commands) -> None:
    """matrix and show: what a run would measure, and what one recorded."""
    matrix = commands.add_parser("matrix", help="list the cases a run would measure, and the dropped cells with reasons")
    add_run_options(matrix, MATRIX_OPTIONS)
    matrix.set_defaults(run=cmd_matrix)
    show = commands.add_parser("show", help="render the results table of recorded run files")
    show.add_argument("results", nargs="+", help="results JSON files written by a --benchmark run")
    show.set_defaults(run=cmd_show)


def add_gating_commands(commands) -> None:
    """compare and baseline update: verdicts against recorded results, and the baselines they use."""
    compare = commands.add_parser("compare", help="verdict per case and metric of NEW against OLD (files or folders)")
    compare.add_argument("old", help="results file or folder: the reference")
    compare.add_argument("new", help="results file or folder: the candidate")
    compare.add_argument("--markdown", help="also write the Markdown table to this file (never one of the inputs)")
    compare.add_argument("--force", action="store_true", help="replace an existing --markdown file")
    add_run_options(compare, GATE_OPTIONS)
    compare.set_defaults(run=cmd_compare)
    baseline = commands.add_parser("baseline", help="manage stored baselines").add_subparsers(dest="action", required=True)
    update = baseline.add_parser("update", help="merge measured cases of results files into baselines/<machine-class>/")
    update.add_argument("results", nargs="+", help="results files or folders")
    update.add_argument("--baseline-dir", default=RunOptions().baseline_dir, help="baseline root (default: %(default)s)")
    update.set_defaults(run=cmd_baseline_update)


def add_rendering_commands(commands) -> None:
    """publish, report, ladder, figures and page: the asv history, the time charts, the lever ladder,
    the characterization and a run's HTML report."""
    from harness.publish.figures_page import add_figures_command
    from harness.publish.run_report import add_page_command

    history = commands.add_parser("publish", help="turn results files into asv results and build the asv HTML history")
    history.add_argument(
        "results", nargs="+",
        help="results files or folders (searched recursively for run-*.json); a file that cannot be published "
        "(unreadable, dirty tree, unknown commit) is skipped with a warning, and the exit status is 13",
    )
    history.add_argument("--config", default="asv.conf.json", help="asv config (default: %(default)s)")
    history.add_argument("--allow-dirty", action="store_true", help="also publish runs recorded from an uncommitted tree")
    history.add_argument("--preview", action="store_true", help="then serve the pages on localhost (asv preview)")
    history.add_argument("--port", type=int, default=8080, help="port of --preview (default: %(default)s)")
    history.set_defaults(run=cmd_publish)
    report = commands.add_parser("report", help="stacked bar charts (PNG, SVG) of where the time goes, per case")
    report.add_argument("results", nargs="+", help="results JSON files written by a --benchmark run")
    report.add_argument("--out", required=True, help="folder for the charts")
    report.set_defaults(run=cmd_report)
    steps = commands.add_parser("ladder", help="the lever ladder: speed-up per step, combined, geomean across families")
    steps.add_argument("results", nargs="+", help="results files or folders written by --benchmark runs")
    steps.add_argument(
        "--across-runs", action="store_true",
        help="the results are repeated runs of one matrix: also give each family's combined speed-up "
        "with its interval across the runs (their spread, which one run's interval cannot see)",
    )
    steps.add_argument("--out", help="folder for the chart (default: beside each results file)")
    steps.set_defaults(run=cmd_ladder)
    add_figures_command(commands, print_list)
    add_page_command(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    except OSError as exc:  # a folder or file the command was told to write cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"harness: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR


if __name__ == "__main__":
    sys.exit(main())
