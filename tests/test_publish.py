"""`harness publish`: asv results files from recorded runs, `asv publish`, and `asv compare`.

A temporary git repository with two commits stands in for the project; each commit gets a
results file (the second one 30% slower) whose environment names it.
"""

import functools
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR, HarnessError
from harness.publish.asv import RESULT_COLUMNS, benchmark_name
from harness.store.records import ResultsFile
from tests.test_baselines import ENV, record

CONFIG = {
    "version": 1, "project": "demo", "project_url": "#", "repo": ".", "branches": ["main"], "dvcs": "git",
    "environment_type": "existing", "results_dir": ".asv/results", "html_dir": ".asv/html", "show_commit_url": "#",
}
GPU_ENV = {**ENV, "gpu_count": 1, "device_name": "NVIDIA H100 80GB HBM3", "cuda_version": "12.8",
           "driver_version": "570.1", "python": "3.11.2"}


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_project(root: Path) -> tuple[Path, list[str]]:
    """A git repo on branch main with two commits one day apart, and the asv config."""
    repo = root / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commits = []
    for day, text in ((1, "first"), (2, "second")):
        (repo / "file.txt").write_text(text)
        git(repo, "add", "file.txt")
        date = f"2026-01-0{day}T12:00:00+00:00"
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", text], cwd=repo,
                       check=True, env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "PATH": "/usr/bin:/bin"})
        commits.append(git(repo, "rev-parse", "HEAD"))
    (repo / "asv.conf.json").write_text(json.dumps(CONFIG))
    return repo, commits


def recorded(folder: Path, name: str, commit: str, scale: float, env=GPU_ENV) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(folder / f"run-{name}.json", {**env, "git_commit": commit, "git_dirty": False}, {})
    for case_id in ("llama-tt-tiny-eager", "llama-tt-tiny-sdpa"):
        results.add(with_breakdown(record(case_id, scale=scale), scale))
    # Medians 30% apart, samples interleaved: a ratio alone would call it slower, the samples do not.
    noisy = record("llama-tt-tiny-noisy")
    noisy["e2e_s"] = [0.010, 0.020] * 6 if scale == 1.0 else [0.0105, 0.030] * 6
    results.add(noisy)
    results.add(record("llama-tt-tiny-broken", status="error"))
    return results.path


def with_breakdown(case: dict, scale: float) -> dict:
    """The case's stage times and profiled breakdown: its decode linear time and idle share grow with `scale`."""
    case["stages_s"] = {"prefill": [0.004 * (1 + 0.001 * i) for i in range(12)],
                        "decode": [0.006 * scale * (1 + 0.001 * i) for i in range(12)]}
    case["breakdown"] = {"prefill": {"linear": 0.002, "attention": 0.001}, "decode": {"linear": 0.003 * scale, "norm": 0.0005}}
    case["idle_frac"] = {"prefill": 0.1, "decode": 0.2 * scale}
    return case


BREAKDOWN = ("stage.decode_s", "breakdown.decode.linear_s", "idle.decode")  # what grew in the second commit


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Two commits' results published once for the tests below (asv publish takes seconds)."""
    root = tmp_path_factory.mktemp("publish")
    repo, commits = make_project(root)
    recorded(root / "results" / "a", "20260101T120000Z-1-aaaaaa", commits[0], 1.0)
    recorded(root / "results" / "b", "20260102T120000Z-1-bbbbbb", commits[1], 1.3)
    status = main(["publish", str(root / "results"), "--config", str(repo / "asv.conf.json")])
    assert status == 0
    return repo, commits


MACHINE = "gpu-1x-nvidia-h100-80gb-hbm3"


def test_results_files_keep_samples_and_asv_stats(published):
    """Published asv results describe the GPU machine and keep each commit's samples, asv stats, one TPOT
    median per iteration and the fingerprint as version, leaving failed cases out."""
    from asv.results import Results

    repo, commits = published
    folder = repo / ".asv" / "results" / MACHINE
    machine = json.loads((folder / "machine.json").read_text())
    assert machine["gpu"] == "NVIDIA H100 80GB HBM3" and machine["gpu_count"] == "1"
    assert "1x NVIDIA H100" in machine["description"] and "driver 570.1" in machine["description"]
    files = sorted(p for p in folder.glob("*.json") if p.name != "machine.json")
    assert [p.name[:8] for p in files] == sorted(c[:8] for c in commits)
    loaded = Results.load(str(folder / next(p.name for p in files if p.name.startswith(commits[1][:8]))))
    name = benchmark_name({"id": "llama-tt-tiny-eager", "family": "llama"}, "e2e_s")
    samples = loaded.get_result_samples(name, [])[0]
    assert samples == pytest.approx(record(scale=1.3)["e2e_s"])
    stats = loaded.get_result_stats(name, [])[0]
    assert stats["ci_99_a"] <= loaded.get_result_value(name, [])[0] <= stats["ci_99_b"]
    assert stats["repeat"] == 12 and stats["number"] == 1
    tpot = loaded.get_result_samples(name.replace("e2e_s", "tpot_s"), [])[0]
    assert len(tpot) == 12, "one median per iteration, as the verdicts use"
    assert not any("broken" in key for key in loaded.get_all_result_keys()), "failed cases are left out"
    benchmarks = json.loads((repo / ".asv" / "results" / "benchmarks.json").read_text())
    assert benchmarks[name]["version"] == "f1" and benchmarks[name]["unit"] == "seconds"
    assert loaded.benchmark_version[name] == "f1"
    assert json.loads(files[0].read_text())["result_columns"] == list(RESULT_COLUMNS)


def test_html_history_lists_both_commits(published):
    """The published HTML lists both commits and graphs a benchmark's slowdown between them."""
    repo, commits = published
    index = json.loads((repo / ".asv" / "html" / "index.json").read_text())
    assert sorted(index["revision_to_hash"].values()) == sorted(commits)
    name = benchmark_name({"id": "llama-tt-tiny-eager", "family": "llama"}, "e2e_s")
    assert name in index["benchmarks"] and MACHINE in index["machines"]
    graphs = list((repo / ".asv" / "html" / "graphs").rglob(f"{name}.json"))
    points = json.loads(graphs[0].read_text())
    assert len(points) == 2 and points[1][1] > points[0][1]


def test_breakdown_series_are_published_beside_the_metrics(published):
    """Each case's stage times, per-phase category seconds and idle shares are asv series of their own,
    graphed over both commits, marked as recorded and not gated."""
    repo, commits = published
    index = json.loads((repo / ".asv" / "html" / "index.json").read_text())
    benchmarks = json.loads((repo / ".asv" / "results" / "benchmarks.json").read_text())
    for metric in BREAKDOWN:
        name = benchmark_name({"id": "llama-tt-tiny-eager", "family": "llama"}, metric)
        assert name in index["benchmarks"], name
        assert "not gated" in benchmarks[name]["code"]
        graphs = [path for path in (repo / ".asv" / "html" / "graphs").rglob(f"{name}.json") if "summary" not in path.parts]
        points = json.loads(graphs[0].read_text())
        assert len(points) == 2 and points[1][1] == pytest.approx(points[0][1] * 1.3, rel=0.01), (metric, points)
    stable = benchmark_name({"id": "llama-tt-tiny-eager", "family": "llama"}, "breakdown.prefill.attention_s")
    assert benchmarks[stable]["type"] == "track" and benchmarks[stable]["unit"] == "seconds"


def test_asv_compare_finds_the_slowdown_significant(published):
    """`asv compare` on the published results calls the 30% slowdown significant and a change within
    overlapping samples not."""
    repo, commits = published
    done = subprocess.run(
        [sys.executable, "-m", "asv", "compare", commits[0], commits[1], "--machine", MACHINE,
         "--config", str(repo / "asv.conf.json")],
        cwd=repo, capture_output=True, text=True, check=True)
    print(done.stdout)  # the table asv prints, kept in the test log

    def change(case_metric):
        line = next(line for line in done.stdout.splitlines() if f"llama.{case_metric} " in line)
        ratio = line.split("|")[4].strip()  # "~" marks a ratio beyond the factor but not significant
        return line.split("|")[1].strip(), ratio.startswith("~"), round(float(ratio.lstrip("~")), 2)

    assert change("llama-tt-tiny-eager.e2e_s") == ("+", False, 1.3), "slower, and significant on the samples"
    assert change("llama-tt-tiny-eager.peak_mem_bytes") == ("", False, 1.0)
    assert change("llama-tt-tiny-noisy.e2e_s") == ("", True, 1.35), "overlapping samples: not a significant change"


def test_unknown_commit_and_dirty_tree_are_clear_errors(tmp_path, capsys):
    """Publishing a run whose commit is not in the repository, or that was recorded on a dirty tree, is
    refused with a clear error."""
    repo, commits = make_project(tmp_path)
    config = str(repo / "asv.conf.json")
    recorded(tmp_path / "x", "a", "0" * 40, 1.0)
    assert main(["publish", str(tmp_path / "x"), "--config", config]) == EXIT_HARNESS_ERROR
    assert "is not in the repository" in capsys.readouterr().err
    dirty = ResultsFile(tmp_path / "y" / "run-b.json", {**GPU_ENV, "git_commit": commits[0], "git_dirty": True}, {})
    (tmp_path / "y").mkdir()
    dirty.add(record())
    assert main(["publish", str(dirty.path), "--config", config]) == EXIT_HARNESS_ERROR
    assert "--allow-dirty" in capsys.readouterr().err


@pytest.fixture(scope="module")
def served(published):
    """The published pages over HTTP on localhost, as `harness publish --preview` serves them."""
    repo, commits = published
    handler = functools.partial(_QuietHandler, directory=str(repo / ".asv" / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", commits
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


# One point per plotted commit: the hashes under the main graph's points.
GRAPH_COMMITS = """(function () {
    var plot = $('#main-graph').data('plot');
    if (!plot) return null;
    var hashes = [];
    plot.getData().forEach(function (series) {
        series.data.forEach(function (point) { hashes.push($.asv.get_commit_hash(point[0])); });
    });
    return hashes.length ? hashes : null;
})()"""


def test_pages_in_a_headless_browser(served, browser):
    """The published pages load in a headless browser, list the benchmarks and plot both commits without
    errors, and the error check does see console errors and failed loads."""
    base, commits = served
    browser.open(f"{base}/index.html")
    listed = "document.body.innerText.indexOf('llama-tt-tiny-eager') >= 0 && document.title.indexOf('demo') >= 0"
    assert browser.poll(listed), "the index names the project and lists the benchmarks"
    name = benchmark_name({"id": "llama-tt-tiny-eager", "family": "llama"}, "e2e_s")
    browser.open(f"{base}/index.html#{name}")
    plotted = browser.poll(GRAPH_COMMITS)
    assert plotted and sorted(plotted) == sorted(commit[:8] for commit in commits), f"graph shows {plotted}"
    breakdown = benchmark_name({"id": "llama-tt-tiny-eager", "family": "llama"}, "breakdown.decode.linear_s")
    browser.open(f"{base}/index.html#{breakdown}")
    plotted = browser.poll(GRAPH_COMMITS)
    assert plotted and sorted(plotted) == sorted(commit[:8] for commit in commits), f"breakdown graph shows {plotted}"
    assert browser.errors == [], "no console errors, exceptions or failed loads"
    browser.evaluate("console.error('probe'); fetch('missing.json'); 0")
    browser.poll("window.__probed = (window.__probed || 0) + 1; window.__probed > 10")  # events arrive meanwhile
    assert "console: probe" in browser.errors, "the error check itself sees console errors"
    assert any("missing.json" in error for error in browser.errors), "and failed loads"


def test_preview_serves_the_pages_on_localhost(published):
    """`harness publish --preview` serves the pages, with their vendored scripts, on localhost."""
    repo, _ = published
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "harness", "publish", str(repo.parent / "results"),
               "--config", str(repo / "asv.conf.json"), "--preview", "--port", str(port)]
    process = subprocess.Popen(command, cwd=repo, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and process.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read().decode()
            except OSError:
                time.sleep(0.5)
        assert page and 'src="vendor/jquery.min.js"' in page
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # harness and the asv preview it started
        process.wait(timeout=30)


def test_pages_load_nothing_from_the_network():
    """The published pages load their scripts and stylesheets from vendored copies, and a network script
    without one is refused."""
    from harness.publish.asv_assets import VENDOR_SOURCE, VENDORED, localize

    page = (Path(__import__("asv").__file__).parent / "www" / "index.html").read_text(encoding="utf-8")
    local = localize(page)
    assert not re.search(r'<(script|link)[^>]*(src|href)="https?://[^"]*"[^>]*(js|css|integrity)', local)
    assert all((VENDOR_SOURCE / path).is_file() for path in VENDORED.values())
    with pytest.raises(HarnessError, match="cdn.example/new.js"):
        localize('<script src="https://cdn.example/new.js"></script>')
    link = '<link rel="icon" href="https://example.org/x.ico">'
    assert localize(link) == link, "only scripts and stylesheets are vendored"
