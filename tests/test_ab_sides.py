"""`harness ab` end to end (harness/ab/sides.py, session.py, worker.py): refusals of bad input
with exit 10 and one line, the worktree and the two-interpreter modes on a real tiny case, and
HEAD's output compared with BASE's."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.ab.worker import Worker
from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR

ROOT = Path(__file__).resolve().parents[1]
# One small case, few pairs: the test checks the machinery, not the statistics (tests/test_ab_decide.py does).
SMALL = ["--families", "llama", "--stacks", "eager", "-k", "b4-p32-g32", "--iterations", "4", "--warmup", "1",
         "--min-pairs", "3", "--max-pairs", "3", "--per-round", "1", "--contention-ratio", "0"]


def git(repo: Path, *args: str) -> str:
    found = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                           capture_output=True, text=True, check=True)
    return found.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git repository holding this checkout's files as they are now (committed or not), two commits deep."""
    repo = tmp_path_factory.mktemp("project")
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q")
    commit_all(repo, "base")
    (repo / "NOTES.txt").write_text("a change that changes no measured code\n")
    commit_all(repo, "head")
    return repo


def run_ab(repo: Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(repo)
    status = main(["ab", *args])
    return status, capsys.readouterr().err


@pytest.fixture
def tiny_repo(tmp_path) -> Path:
    (tmp_path / "file.txt").write_text("one\n")
    git(tmp_path, "init", "-q")
    commit_all(tmp_path, "first")
    return tmp_path


def test_an_unknown_revision_is_refused_in_one_line(tiny_repo, monkeypatch, capsys):
    """A revision git does not know gives exit 10 and one line naming it."""
    status, err = run_ab(tiny_repo, monkeypatch, capsys, "no-such-branch", "HEAD")
    assert status == EXIT_HARNESS_ERROR
    assert err.strip().splitlines() == [f"harness: error: unknown revision 'no-such-branch' in {tiny_repo}"]


def test_a_dirty_tree_is_refused_in_one_line(tiny_repo, monkeypatch, capsys):
    """Uncommitted changes to a tracked file give exit 10 and one line naming the file."""
    (tiny_repo / "file.txt").write_text("two\n")
    status, err = run_ab(tiny_repo, monkeypatch, capsys, "HEAD", "HEAD")
    assert status == EXIT_HARNESS_ERROR
    assert len(err.strip().splitlines()) == 1 and "uncommitted changes (file.txt)" in err


@pytest.mark.parametrize("args", [["HEAD"], ["--base-python", sys.executable], ["HEAD", "HEAD", "--base-python", "python"]])
def test_half_given_sides_are_refused(tiny_repo, monkeypatch, capsys, args):
    """One revision, one interpreter, or revisions mixed with interpreters: exit 10, one line."""
    status, err = run_ab(tiny_repo, monkeypatch, capsys, *args)
    assert status == EXIT_HARNESS_ERROR and len(err.strip().splitlines()) == 1


def test_a_revision_without_the_worker_is_refused_and_cleaned_up(tiny_repo, monkeypatch, capsys):
    """A revision that predates the A/B worker is named in the error, and its temporary worktree is removed."""
    status, err = run_ab(tiny_repo, monkeypatch, capsys, "HEAD", "HEAD")
    assert status == EXIT_HARNESS_ERROR and "predates the A/B gate" in err
    assert len(git(tiny_repo, "worktree", "list").splitlines()) == 1


def read_record(results: Path) -> dict:
    (found,) = results.glob("ab-*.json")
    return json.loads(found.read_text())


def test_worktree_mode_measures_both_revisions(project, tmp_path, monkeypatch, capsys):
    """BASE and HEAD revisions run from their own worktrees, both time the same iterations, and the worktrees are removed."""
    results = tmp_path / "results"
    status, _ = run_ab(project, monkeypatch, capsys, "HEAD~1", "HEAD", *SMALL, "--results-dir", str(results))
    data = read_record(results)
    assert status == data["exit_status"] and status in (0, 12)
    assert data["sides"]["base"]["commit"] == git(project, "rev-parse", "HEAD~1")
    assert data["sides"]["head"]["commit"] == git(project, "rev-parse", "HEAD")
    for name in ("base", "head"):
        assert Path(data["environments"][name]["harness_file"]).is_relative_to(data["sides"][name]["tree"])
    (case,) = data["cases"]
    assert case["pairs"] == 3 and case["verdict"] in ("unchanged", "inconclusive", "improved", "regressed")
    assert len(case["samples"]["base"]) == len(case["samples"]["head"]) == 3
    assert set(case["log_ratios"]) == {"e2e_s", "ttft_s", "tpot_s"}
    assert len(git(project, "worktree", "list").splitlines()) == 1


def test_two_interpreter_mode_runs_the_current_tree(project, tmp_path, monkeypatch, capsys):
    """--base-python and --head-python measure the current tree under each interpreter."""
    results = tmp_path / "results"
    status, _ = run_ab(project, monkeypatch, capsys, "--base-python", sys.executable, "--head-python", sys.executable,
                       *SMALL, "--results-dir", str(results))
    data = read_record(results)
    assert status == data["exit_status"]
    assert {data["sides"][name]["tree"] for name in ("base", "head")} == {str(project)}
    assert data["environments"]["head"]["torch"] == torch.__version__
    assert data["cases"][0]["pairs"] == 3


def test_head_output_is_compared_with_base(tmp_path):
    """The HEAD worker reports a mismatch when BASE's saved output differs from its own."""
    worker = Worker()
    plan = worker.plan({"families": "llama", "stacks": "eager", "iterations": 2, "warmup": 0}, "b4-p32-g32")
    case_ids = [case["id"] for case in plan["cases"]]
    assert worker.prepare(case_ids, str(tmp_path), "base")[case_ids[0]]["status"] == "ok"
    assert worker.prepare(case_ids, str(tmp_path), "head")[case_ids[0]]["status"] == "ok"
    saved = torch.load(tmp_path / "0.pt", weights_only=False)
    torch.save(saved + 1, tmp_path / "0.pt")
    answer = worker.prepare(case_ids, str(tmp_path), "head")[case_ids[0]]
    assert answer["status"] == "mismatch" and "differs from BASE" in answer["message"]
