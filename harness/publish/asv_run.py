"""Running asv on the written results: `asv publish` builds the HTML history, `asv preview` serves it.

asv runs from this interpreter's environment, from the folder of its config (asv.conf.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

# `harness publish` built the history but left out results files it could not publish (each named
# in a warning): not a failure of the history, which keeps building, but not a clean publish either.
# (harness/errors.py defines 10 and 11; docs/gating.md lists them all.)
EXIT_PUBLISHED_WITH_SKIPS = 13


@dataclass(frozen=True)
class AsvConfig:
    """An asv config's file and the folders it names, resolved against the config's folder."""

    path: Path
    repo: Path
    results_dir: Path
    html_dir: Path


def load_config(path: Path) -> AsvConfig:
    """asv resolves the config's relative paths against the working directory: we run it from the
    config's folder, so they are relative to the config file."""
    path = Path(path).resolve()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path}: cannot read the asv config ({exc})") from None
    base = path.parent
    return AsvConfig(path, base / data.get("repo", "."), base / data.get("results_dir", "results"),
                     base / data.get("html_dir", "html"))


def asv(config: AsvConfig, *args: str) -> int:
    """Run asv from this interpreter's environment, from the config's folder."""
    command = [sys.executable, "-m", "asv", *args, "--config", str(config.path)]
    return subprocess.run(command, cwd=config.path.parent).returncode


def publish(config: AsvConfig) -> None:
    from harness.publish.asv_assets import vendor_pages

    if asv(config, "publish", "--no-pull") != 0:
        raise HarnessError("asv publish failed (its messages are above)")
    vendor_pages(config.html_dir)


def preview(config: AsvConfig, port: int) -> int:
    return asv(config, "preview", "--port", str(port))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise HarnessError(f"git {' '.join(args)} in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def commit_date_ms(repo: Path, commit: str) -> int:
    """The author date asv's git plugin uses (rev-list --format=%at, in ms); unknown commits fail."""
    try:
        full = git(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    except HarnessError:
        raise HarnessError(f"commit {commit[:12]} is not in the repository {repo} (fetch its history, "
                           "e.g. actions/checkout with fetch-depth: 0)") from None
    return int(git(repo, "log", "-1", "--format=%at", full)) * 1000
