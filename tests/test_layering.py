"""Layering: reading, judging and publishing recorded results imports neither torch nor transformers.

Each test runs Python in a subprocess whose imports of torch and transformers fail (and are
counted: a caught `try: import torch` fails the test too). The CLI runs there as `python -m
harness` does, on results files written here without running any model.

The block is an import hook rather than `sys.modules["torch"] = None`: scipy's array-API helpers
(scipy 1.17, `_issubclass_fast`) read `sys.modules["torch"].Tensor` whenever that key exists, so a
None entry breaks `scipy.stats` itself, while a failing import is what a machine without torch sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.errors import EXIT_REGRESSION
from harness.store.records import ResultsFile
from tests.test_baselines import record as timed_record
from tests.test_cli_compare import results
from tests.test_ladder import _run as ladder_run
from tests.test_publish import MACHINE, make_project, recorded
from tests.test_report import record as table_record

ROOT = Path(__file__).resolve().parents[1]
TORCH_FREE_PACKAGES = ("harness.spec", "harness.analyse", "harness.store", "harness.publish", "harness.ab")
BLOCKED_EXIT = 97  # the subprocess tried to import a blocked module, and caught the failure

BLOCK = """
import sys

BLOCKED = ("torch", "transformers")
attempts = []


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"{name} is blocked: this code path must not import it", name=name)
        return None


sys.meta_path.insert(0, Block())


def finish(status):
    if attempts:
        print("blocked imports attempted: " + ", ".join(attempts), file=sys.stderr)
        sys.exit(status or BLOCKED_EXIT)
    sys.exit(status)
""".replace("BLOCKED_EXIT", str(BLOCKED_EXIT))

IMPORT_ALL = """
import importlib, pkgutil, traceback

names, failed = ["harness.cli"], []
for package in PACKAGES:
    names.append(package)
    names += [found.name for found in pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name)
        traceback.print_exc()
print("\\n".join(names))
finish(1 if failed else 0)
""".replace("PACKAGES", repr(TORCH_FREE_PACKAGES))

RUN_CLI = """
import runpy

sys.argv = ["harness", *sys.argv[1:]]
try:
    runpy.run_module("harness", run_name="__main__", alter_sys=True)
    status = 0
except SystemExit as done:
    status = done.code
finish(status)
"""


def blocked(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` after the block in a fresh interpreter, from the repository root."""
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=600)


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` with torch and transformers blocked."""
    return blocked(RUN_CLI, *map(str, args), env=env)


def explain(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def test_the_block_refuses_torch_and_reports_a_caught_attempt():
    """The block itself works: importing torch fails, and a caught attempt still fails the run."""
    refused = blocked("import torch")
    assert refused.returncode != 0 and "torch is blocked" in refused.stderr
    caught = blocked("try:\n    import transformers\nexcept ImportError:\n    pass\nfinish(0)")
    assert caught.returncode == BLOCKED_EXIT and "attempted: transformers" in caught.stderr


def test_spec_analyse_store_publish_and_cli_import_without_torch():
    """Every module of harness.spec, harness.analyse, harness.store and harness.publish, and harness.cli,
    imports without torch or transformers."""
    done = blocked(IMPORT_ALL)
    assert done.returncode == 0, explain(done)
    imported = set(done.stdout.split())
    assert {"harness.cli", "harness.analyse.stats", "harness.spec.selection", "harness.store.records",
            "harness.publish.asv"} <= imported, "the walk found the modules"


def profiled_results(folder: Path) -> Path:
    """A results file with one profiled case and one without a profile."""
    profiled = table_record(
        "eager", [0.4, 0.41], breakdown={"decode": {"linear": 0.1, "attention": 0.5, "other": 0.01}},
        profile_wall_s={"decode": 1.0}, idle_frac={"decode": 0.3}, sol_frac={"decode": 0.01},
        profile_reliable={"decode": True}, ops_per_token=314.0, ops_unit="host ops",
    )
    file = ResultsFile(folder / "run-p.json", {}, {})
    file.add(profiled)
    file.add(table_record("sdpa", [0.2, 0.21]))
    return file.path


def test_show_without_torch(tmp_path):
    """`harness show` renders the results and where-the-time-goes tables without torch."""
    done = harness("show", profiled_results(tmp_path))
    assert done.returncode == 0, explain(done)
    assert "llama-tt-tiny-b1-p8-g4-fp32-sdpa" in done.stdout and "where the time goes" in done.stdout


def test_report_without_torch(tmp_path):
    """`harness report` writes the where-the-time-goes charts without torch."""
    done = harness("report", profiled_results(tmp_path), "--out", tmp_path / "charts")
    assert done.returncode == 0, explain(done)
    assert sorted(p.suffix for p in (tmp_path / "charts").iterdir()) == [".png", ".svg"]
    assert "llama-tt-tiny-b1-p8-g4-fp32-sdpa: no profiled iteration recorded" in done.stdout


def test_figures_without_torch(tmp_path):
    """`harness figures` writes the characterization's figures and its page without torch, the length
    tables included."""
    file = ResultsFile(tmp_path / "run-f.json", {}, {})
    profiled = table_record(
        "eager", [0.4, 0.41], task="tt", prompt_lens=[8, 8], breakdown={"decode": {"linear": 0.1, "attention": 0.5}},
        profile_wall_s={"decode": 1.0}, idle_frac={"decode": 0.3},
    )
    file.add(profiled)
    file.add(table_record("sdpa", [0.2, 0.21], task="tt", prompt_lens=[8, 8]))
    done = harness("figures", file.path, "--out", tmp_path / "figures")
    assert done.returncode == 0, explain(done)
    written = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"index.html", "breakdown-llama.svg", "lengths-real-vs-synthetic.png", "ladder.png"} <= written


def test_compare_without_torch(tmp_path):
    """`harness compare` finds a regression, and writes its Markdown and the step summary, without torch."""
    old = results(tmp_path / "old", "a", timed_record("x"), timed_record("y"))
    new = results(tmp_path / "new", "b", timed_record("x", scale=1.8), timed_record("y"))
    summary = tmp_path / "summary.md"
    done = harness("compare", old, new, "--markdown", tmp_path / "out.md", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == EXIT_REGRESSION, explain(done)
    assert "regressed" in done.stdout and "| x | e2e_s | **regressed** |" in (tmp_path / "out.md").read_text()
    assert "**regressed**" in summary.read_text()


def test_baseline_update_without_torch(tmp_path):
    """`harness baseline update` merges a results file into the baselines without torch."""
    path = results(tmp_path / "res", "a", timed_record("x"))
    done = harness("baseline", "update", path, "--baseline-dir", tmp_path / "bl")
    assert done.returncode == 0, explain(done)
    assert (tmp_path / "bl" / "cpu-amd-epyc-2c" / "llama.json").exists()


def test_ladder_without_torch(tmp_path):
    """`harness ladder` prints the ladder, across runs too, and writes its charts without torch."""
    paths = []
    for index, speedup in enumerate((1.7, 1.5)):
        file = ResultsFile(tmp_path / f"run-{index}.json", {}, {})
        for item in ladder_run([("eager", 10), ("sdpa", 10 / speedup)]):
            file.add(dict(item, id=f"llama-w-{item['stack']}"))
        paths.append(file.path)
    done = harness("ladder", *paths, "--out", tmp_path / "charts", "--across-runs")
    assert done.returncode == 0, explain(done)
    assert "llama: combined" in done.stdout and "across 2 runs" in done.stdout
    assert sorted(p.name for p in (tmp_path / "charts").iterdir())[:2] == ["run-0-ladder.png", "run-0-ladder.svg"]


def test_publish_without_torch(tmp_path):
    """`harness publish` writes asv results for two commits and builds the HTML history without torch."""
    repo, commits = make_project(tmp_path)
    recorded(tmp_path / "results" / "a", "20260101T120000Z-1-aaaaaa", commits[0], 1.0)
    recorded(tmp_path / "results" / "b", "20260102T120000Z-1-bbbbbb", commits[1], 1.3)
    done = harness("publish", tmp_path / "results", "--config", repo / "asv.conf.json")
    assert done.returncode == 0, explain(done)
    folder = repo / ".asv" / "results" / MACHINE
    written = sorted(p.name[:8] for p in folder.glob("*.json") if p.name != "machine.json")
    assert written == sorted(commit[:8] for commit in commits)
    index = json.loads((repo / ".asv" / "html" / "index.json").read_text())
    assert sorted(index["revision_to_hash"].values()) == sorted(commits)
