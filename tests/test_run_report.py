"""The run report (harness/publish/run_report.py): the HTML page beside a results file, from a real tiny
recorded run and from hand-built records, in headless chromium, and `harness page` on good and bad files."""

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.analyse.gate import compare_records
from harness.analyse.policy import device_policy
from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR
from harness.options import RunOptions
from harness.publish.run_report import NOT_STORED, write_run_report
from harness.store.baselines import case_entry
from harness.store.records import load_results
from tests.test_figures import hstu, record, results
from tests.test_layering import explain, harness, profiled_results

FIGURES = ("ladder-chart", "breakdown-llama", "idle")
TABLES = ("family-llama", "evidence", "ladder-table", "profile", "verdicts-table")
HOSTILE = "<script>console.error('injected')</script> tokens differ at row 0"


@pytest.fixture(scope="module")
def run_file(recorded_run) -> Path:
    """The results file of one real tiny Llama run, two stacks of one workload, each profiled (tests/conftest.py;
    tests/test_figures.py draws its figures from the same run)."""
    return recorded_run


@pytest.fixture
def real_page(run_file, tmp_path) -> Path:
    """The report of the real run, judged against a baseline taken from the run itself (every metric has a
    verdict row), written beside a copy of its results file."""
    copy = tmp_path / run_file.name
    shutil.copy(run_file, copy)
    data = load_results(copy)
    environment = data["environment"]
    options = RunOptions()
    policy = device_policy("cpu", options.alpha, options.normalize, options.thresholds)
    baselines = {case["id"]: case_entry(case, environment) for case in data["cases"]}
    verdicts = compare_records(data["cases"], baselines, environment, policy)
    return write_run_report(copy, data["cases"], verdicts, "harness results")


def test_the_report_is_written_beside_the_results_file_with_every_part(real_page, run_file):
    """The page of a real run is the results file's name with .html, and holds the run's commit and counts,
    the family table, the evidence, the ladder chart and table, the breakdown and idle charts, the profile
    table and the verdicts, with no address outside the page."""
    assert real_page.name == run_file.name.removesuffix(".json") + ".html" and real_page.with_suffix(".json").exists()
    text = real_page.read_text()
    for anchor in (*FIGURES, *TABLES):
        assert f'id="{anchor}"' in text, anchor
    assert text.count("data:image/svg+xml;base64,") == len(FIGURES)
    assert load_results(run_file)["environment"]["git_commit"][:12] in text
    assert "2 case(s): 2 measured (ok), 0 failed, 0 contended" in text
    assert "unchanged" in text and "no verdicts" not in text
    assert re.findall(r'(?:src|href)="(?!data:|#)', text) == [], "every source is embedded"
    profile = text[text.index('id="profile"'):]
    assert profile.index("<td>prefill</td>") < profile.index("<td>decode</td>"), "phases in the order they run"


def test_the_report_in_headless_chromium(real_page, tmp_path, browser):
    """The real run's page, alone in an empty folder, loads in headless chromium with its tables and every
    chart decoded, no console error and no request beyond itself and its data: URIs."""
    alone = tmp_path / "alone"
    alone.mkdir()
    page = alone / real_page.name
    shutil.copy(real_page, page)
    browser.watch_network()
    browser.open(page.as_uri())
    images = browser.poll("Array.from(document.images).every(i => i.complete) && "
                          "Array.from(document.images).map(i => [i.closest('figure').id, i.naturalWidth])")
    assert images and sorted(name for name, _ in images) == sorted(FIGURES), images
    assert all(width > 0 for _, width in images), f"every chart decoded: {images}"
    found = browser.evaluate(f"{list(TABLES)}.map(id => document.querySelectorAll('#' + id + ' tbody tr').length)")
    assert all(count > 0 for count in found), dict(zip(TABLES, found, strict=True))
    assert browser.errors == [], "no console errors, exceptions or failed loads"
    assert [url for url in browser.requests if url != page.as_uri() and not url.startswith("data:")] == []
    browser.screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"


def hand_run(folder: Path) -> Path:
    """Four Llama stacks of one workload whose TTFTs sort differently as text and as numbers (9, 100, 20 ms;
    the fourth failed, with a message that is markup), a contended case, and an HSTU case; no profile."""
    cases = [record("eager", [0.4, 0.41], ttft_s=[0.009] * 2), record("sdpa", [0.2, 0.21], ttft_s=[0.1] * 2),
             record("sdpa+static", [0.3, 0.31], ttft_s=[0.02] * 2),
             record("sdpa+static+compile", [], status="mismatch", message=HOSTILE, ttft_s=[], tpot_s=[], outputs_match=False),
             record("eager", [0.5], status="contended", message="the machine stayed busy", ttft_s=[0.5],
                    workload="llama-tt-tiny-b1-p9-g4-fp32"),
             hstu("padded")]
    return results(folder, *cases, environment={"git_commit": "cd" * 20, "git_dirty": True, "device": "cpu", "cpu_cores": 2})


def column(browser, header: str) -> list[str]:
    script = ("[...document.querySelectorAll('#family-llama tbody tr')].map(row => row.cells["
              f"[...document.querySelectorAll('#family-llama th')].findIndex(h => h.textContent === {header!r})].textContent)")
    return browser.evaluate(script)


def test_clicking_a_header_sorts_a_numeric_column_numerically(tmp_path, browser):
    """Clicking the TTFT header sorts the rows by number (9 < 20 < 100 ms, not as text), again reverses them, and
    the failed case without a TTFT stays last; its markup message is shown as text, never run."""
    path = hand_run(tmp_path)
    data = load_results(path)
    page = write_run_report(path, data["cases"], [], "hand-built run")
    browser.open(page.as_uri())
    click = ("[...document.querySelectorAll('#family-llama th')].find(h => h.textContent === 'TTFT p50 ms').click()")
    browser.evaluate(click)
    assert column(browser, "TTFT p50 ms") == ["9.00", "20.00", "100.00", "500.00", "—"]
    browser.evaluate(click)
    assert column(browser, "TTFT p50 ms") == ["500.00", "100.00", "20.00", "9.00", "—"]
    assert browser.evaluate("document.scripts.length") == 1 and browser.errors == []
    assert HOSTILE in browser.evaluate("document.getElementById('evidence').textContent")


def test_failed_contended_and_unprofiled_cases_render_and_say_what_is_missing(tmp_path):
    """A failed case shows its status and message, a contended one its status; a run without profiles, ladder
    or verdicts says so for each, and every family gets its table."""
    path = hand_run(tmp_path)
    cases = load_results(path)["cases"]
    text = write_run_report(path, cases, [], "hand-built run").read_text()
    assert 'id="family-llama"' in text and 'id="family-hstu"' in text
    assert "tt-tiny-b1-p8-g4-fp32-sdpa+static+compile (mismatch)" in text and "&lt;script&gt;console.error" in text
    assert "6 case(s): 4 measured (ok), 1 failed (mismatch 1), 1 contended" in text
    assert "cdcdcdcdcdcd (uncommitted changes)" in text
    assert "no ok llama case has a profiled iteration" in text and "no idle chart" in text
    assert 'id="ladder-table"' in text and "data:image" in text, "the three ok llama stacks make a ladder"
    assert "no verdicts: no case was compared with a baseline" in text
    lone = write_run_report(path, [hstu("padded")], None, "one stack").read_text()
    assert "no ladder: no workload has its baseline stack and a second stack" in lone and "data:image" not in lone
    assert NOT_STORED in lone and "nothing to chart" not in lone


def test_harness_page_writes_beside_the_file_and_refuses_bad_inputs(tmp_path, capsys):
    """`harness page` writes run-....html beside the file (or into --out), replaces it only with --force, never
    overwrites its input, and refuses a corrupt, foreign or hostile file with one line and exit 10, writing
    nothing."""
    good = hand_run(tmp_path / "good")
    assert main(["page", str(good)]) == 0
    page = good.with_suffix(".html")
    assert f"page written to {page}" in capsys.readouterr().out and NOT_STORED in page.read_text()
    before = page.stat().st_mtime_ns
    assert main(["page", str(good)]) == EXIT_HARNESS_ERROR
    assert "exists; pass --force to replace it" in capsys.readouterr().err and page.stat().st_mtime_ns == before
    assert main(["page", str(good), "--force"]) == 0
    assert main(["page", str(good), "--out", str(tmp_path)]) == 0 and (tmp_path / page.name).exists()
    assert main(["page", str(good), "--out", str(good), "--force"]) == EXIT_HARNESS_ERROR
    assert "is an input of this command" in capsys.readouterr().err and load_results(good)
    bad = {"corrupt": "{not json", "foreign": json.dumps({"kind": "something-else", "schema_version": 1})}
    data = json.loads(good.read_text())
    data["cases"][0].update(breakdown={"decode": {"linear": 0.1}}, profile_wall_s={"decode": 1.0}, sol_frac={"decode": "fast"})
    bad["hostile"] = json.dumps(data)
    del data["cases"][0]["e2e_s"]
    bad["incomplete"] = json.dumps(data)
    for name, text in bad.items():
        path = tmp_path / name / f"run-{name}.json"
        path.parent.mkdir()
        path.write_text(text)
        capsys.readouterr()
        assert main(["page", str(path)]) == EXIT_HARNESS_ERROR, name
        error = capsys.readouterr().err
        assert error.startswith("harness: error: ") and error.count("\n") == 1 and str(path) in error, (name, error)
        assert list(path.parent.iterdir()) == [path], f"{name}: nothing written"


def test_page_without_torch(tmp_path):
    """`harness page` builds the page of a profiled results file with torch and transformers blocked; cases
    without the task key (which only the ladder reads) still get their tables, and a line for the ladder."""
    profile = {"breakdown": {"decode": {"linear": 0.1, "attention": 0.5}}, "profile_wall_s": {"decode": 1.0},
               "idle_frac": {"decode": 0.3}}
    path = results(tmp_path / "res", record("eager", [0.4, 0.41], **profile), record("sdpa", [0.2, 0.21]))
    done = harness("page", path)
    assert done.returncode == 0, explain(done)
    text = path.with_suffix(".html").read_text()
    assert 'id="breakdown-llama"' in text and 'id="idle"' in text and 'id="ladder-chart"' in text
    untasked = profiled_results(tmp_path)
    done = harness("page", untasked)
    assert done.returncode == 0, explain(done)
    text = untasked.with_suffix(".html").read_text()
    assert 'id="family-llama"' in text and "no ladder: a case has no &#x27;task&#x27; key" in text
