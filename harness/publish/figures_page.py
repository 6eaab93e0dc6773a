"""`harness figures`: the characterization's figures (PNG and SVG) from recorded results files,
and one self-contained HTML page (index.html) that embeds each SVG as a data: URI, so it opens
with no network and no other file.

Every input file is read and checked before anything is written, and every output is checked
too: none is an input, and an existing one is replaced only with --force.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.publish.characterize import Run, run_of
from harness.publish.figures import FORMATS
from harness.publish.figures_plan import Omitted, Planned, Sources, plan
from harness.store.records import LADDER_KEYS, load_results, write_text_atomic
from harness.store.result_sets import check_output, result_files

PAGE = "index.html"
STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; }
figure { margin: 2em 0; border-top: 1px solid #ddd; padding-top: 1em; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; margin-top: 0.4em; }
.notes, .omitted { font-size: 0.85em; color: #555; }
"""


def load_sources(results: Sequence[str]) -> tuple[Sources, list[Path]]:
    """Every results file of RESULTS (files, or folders of run-*.json), checked whole; later files
    win per case id, as the other readers do."""
    files = [file for target in results for file in result_files(target)]
    merged: dict[str, dict] = {}
    per_run: list[tuple[Run, list]] = []
    origin: dict[int, Run] = {}
    for file in files:
        loaded = load_results(file, LADDER_KEYS)
        run = run_of(file.name, loaded)
        per_run.append((run, loaded["cases"]))
        for case in loaded["cases"]:
            merged[case["id"]] = case
            origin[id(case)] = run
    return Sources(list(merged.values()), per_run, origin), files


def targets(out: Path, plans: Sequence[Planned]) -> list[Path]:
    return [out / f"{item.stem}.{fmt}" for item in plans for fmt in FORMATS] + [out / PAGE]


def check_outputs(out: Path, paths: Sequence[Path], inputs: Sequence[Path], force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {str(out)!r} is a file; give a folder for the figures")
    if out.is_dir():
        for path in paths:
            check_output(path, inputs, force, "--out")


def data_uri(path: Path) -> str:
    kind = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def figure_html(item: Planned, image: Path) -> str:
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in item.notes)
    return (f'<figure id="{html.escape(item.stem)}"><h2>{html.escape(item.title)}</h2>'
            f'<img src="{data_uri(image)}" alt="{html.escape(item.title)}">'
            f"<figcaption>{html.escape(item.caption)}</figcaption>"
            + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</figure>")


def page_html(drawn: Sequence[tuple[Planned, Path]], omitted: Sequence[Omitted], sources: Sources) -> str:
    runs = "".join(f"<li>{html.escape(run.label())}</li>" for run, _ in sources.per_run)
    ok = sum(1 for record in sources.records if record.get("status") == "ok")
    left = "".join(f'<li class="omitted">{html.escape(item.title)}: left out: {html.escape(item.reason)}</li>'
                   for item in omitted)
    body = "\n".join(figure_html(item, image) for item, image in drawn)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'  # no favicon request: the page loads nothing
        f"<title>harness figures</title><style>{STYLE}</style></head><body>\n"
        f"<h1>Where the time goes: the characterization of {len(sources.records)} recorded case(s)</h1>\n"
        f"<p>{ok} ok case(s) characterized (the others failed or were contended: left out); from:</p><ul>{runs}</ul>\n"
        + (f"<h2>Figures left out</h2><ul>{left}</ul>\n" if left else "")
        + body + "\n</body></html>\n"
    )


def write_figures(results: Sequence[str], out: Path, force: bool) -> tuple[list[Path], list[Omitted]]:
    """Files written (each figure's PNG and SVG, then the page) and the figures left out."""
    sources, inputs = load_sources(results)
    plans, omitted = plan(sources)
    check_outputs(out, targets(out, plans), inputs, force)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    drawn = []
    for item in plans:
        paths = item.render(out / item.stem)
        written += paths
        drawn.append((item, next(path for path in paths if path.suffix == ".svg")))
    page = out / PAGE
    write_text_atomic(page, page_html(drawn, omitted, sources))
    return [*written, page], omitted


def add_figures_command(commands, print_list) -> None:
    """`harness figures RESULTS... --out DIR` (harness/cli.py lists it with the other rendering commands)."""
    figures = commands.add_parser("figures", help="the characterization's figures (PNG, SVG) and one self-contained HTML page")
    figures.add_argument("results", nargs="+", help="results files or folders written by --benchmark runs")
    figures.add_argument("--out", required=True, help="folder for the figures and index.html")
    figures.add_argument("--force", action="store_true", help="replace figures an earlier run left in --out")

    def run(args) -> int:
        written, omitted = write_figures(args.results, Path(args.out), args.force)
        print(f"{len(written)} file(s) written to {args.out}; the page: {written[-1]}")
        print_list(f"{len(omitted)} figure(s) left out:", [f"{item.title}: {item.reason}" for item in omitted])
        return 0

    figures.set_defaults(run=run)
