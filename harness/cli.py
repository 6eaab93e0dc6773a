"""`harness` command line: inspect the matrix and render recorded results.

Measuring happens under pytest (`pytest suites/ --benchmark`); this CLI never measures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness.errors import EXIT_HARNESS_ERROR, HarnessError
from harness.options import RunOptions, option_specs

MATRIX_OPTIONS = ("preset", "device", "dtype", "families", "stacks")


def cmd_matrix(args: argparse.Namespace) -> int:
    import torch

    from harness.selection import select

    values = {name: getattr(args, name) for name in MATRIX_OPTIONS}
    selection = select(RunOptions(**values), torch.cuda.is_available())
    cases, dropped = selection.expand_all()
    print(f"# device {selection.device}, preset {selection.options.preset}, dtypes {','.join(selection.dtypes)}")
    print(f"{len(cases)} case(s):")
    for case in cases:
        print(f"  {case.id}")
    print(f"{len(dropped)} dropped at expansion:")
    for cell in dropped:
        print(f"  {cell.case_id}: {cell.reason}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.records import load_results
    from harness.report import render, render_profile, rows

    console = Console(width=max(Console().width, 160))  # wide enough for case ids when piped
    for path in args.results:
        data = load_results(path)
        table_rows = rows(data["cases"])
        console.print(render(table_rows, title=str(path)))
        profile = render_profile(table_rows)
        if profile is not None:
            console.print(profile)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.charts import render_all
    from harness.records import load_results

    for path in args.results:
        written, skipped = render_all(load_results(path)["cases"], args.out)
        print(f"{path}: {len(written)} file(s) written to {args.out}")
        for case_id in skipped:
            print(f"  {case_id}: no profiled iteration recorded (quick check, or an error)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="harness", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    matrix = commands.add_parser("matrix", help="list the cases a run would measure, and the dropped cells with reasons")
    for dest, flag, default, help_text in option_specs():
        if dest in MATRIX_OPTIONS:
            matrix.add_argument(flag, dest=dest, default=default, help=f"{help_text} (default: {default!r})")
    matrix.set_defaults(run=cmd_matrix)
    show = commands.add_parser("show", help="render the results table of recorded run files")
    show.add_argument("results", nargs="+", help="results JSON files written by a --benchmark run")
    show.set_defaults(run=cmd_show)
    report = commands.add_parser("report", help="stacked bar charts (PNG, SVG) of where the time goes, per case")
    report.add_argument("results", nargs="+", help="results JSON files written by a --benchmark run")
    report.add_argument("--out", required=True, help="folder for the charts")
    report.set_defaults(run=cmd_report)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR


if __name__ == "__main__":
    sys.exit(main())
