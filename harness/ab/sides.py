"""The two sides of an A/B: two revisions of this repository checked out into temporary
worktrees (removed afterwards), or two Python environments on the current tree. No torch here.

Refused with a one-line error (exit 10): a folder that is not a git repository, an unknown
revision, a tree with uncommitted changes to tracked files (the results would name a commit
that was not what ran), an interpreter that cannot be run, a side whose code has no A/B worker.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

WORKER_FILE = Path("harness/ab/worker.py")


@dataclass(frozen=True)
class Side:
    name: str  # "base" or "head"
    label: str  # what the user named: a revision, or an interpreter
    commit: str
    python: str
    tree: Path

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "commit": self.commit, "python": self.python, "tree": str(self.tree)}


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def repo_root(folder: Path) -> Path:
    found = git(folder, "rev-parse", "--show-toplevel")
    if found.returncode:
        raise HarnessError(f"{folder} is not in a git repository: the A/B gate compares revisions of one")
    return Path(found.stdout.strip())


def resolve(repo: Path, revision: str) -> str:
    """The commit a revision names; an unknown one is a one-line error."""
    if not revision or revision.startswith("-"):
        raise HarnessError(f"unknown revision {revision!r}")
    found = git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    if found.returncode:
        raise HarnessError(f"unknown revision {revision!r} in {repo}")
    return found.stdout.strip()


def check_clean(repo: Path) -> None:
    found = git(repo, "status", "--porcelain", "--untracked-files=no")
    if found.returncode:
        raise HarnessError(f"git status failed in {repo}: {found.stderr.strip()}")
    changed = [line[3:] for line in found.stdout.splitlines()]
    if changed:
        raise HarnessError(f"{repo} has uncommitted changes ({', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}): "
                           "commit or stash them first")


def check_python(python: str, side: str) -> str:
    found = shutil.which(python) or (python if Path(python).is_file() else None)
    if found is None:
        raise HarnessError(f"--{side}-python {python!r} is not an executable")
    return found


def check_worker(side: Side) -> None:
    if not (side.tree / WORKER_FILE).is_file():
        raise HarnessError(f"{side.name} ({side.label}, {side.commit[:12]}) has no {WORKER_FILE}: "
                           "it predates the A/B gate, pick a later revision")


@contextmanager
def revision_sides(repo: Path, base: str, head: str, python: str) -> Iterator[tuple[Side, Side]]:
    """BASE and HEAD checked out (detached) into temporary worktrees, removed on the way out."""
    check_clean(repo)
    commits = resolve(repo, base), resolve(repo, head)
    folder = Path(tempfile.mkdtemp(prefix="harness-ab-"))
    added: list[Path] = []
    try:
        sides = []
        for name, label, commit in zip(("base", "head"), (base, head), commits, strict=True):
            tree = folder / name
            made = git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
            if made.returncode:
                raise HarnessError(f"git worktree add of {label} failed: {made.stderr.strip()}")
            added.append(tree)
            sides.append(Side(name, label, commit, python, tree))
        for side in sides:
            check_worker(side)
        yield sides[0], sides[1]
    finally:
        for tree in added:
            git(repo, "worktree", "remove", "--force", str(tree))
        git(repo, "worktree", "prune")
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def interpreter_sides(repo: Path, base_python: str, head_python: str) -> Iterator[tuple[Side, Side]]:
    """The current tree (clean, at its HEAD commit) under two interpreters."""
    check_clean(repo)
    commit = resolve(repo, "HEAD")
    sides = [Side(name, python, commit, check_python(python, name), repo)
             for name, python in (("base", base_python), ("head", head_python))]
    for side in sides:
        check_worker(side)
    yield sides[0], sides[1]
