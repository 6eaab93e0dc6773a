"""The GPU runners' job-started hook (.github/runner/job-started.sh): it admits this repository's benchmark
workflow on main, and where the host enables it the A/B job of a labeled pull request from a branch of this
repository; it refuses every other job, a fork's above all."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_workflows import BENCHMARK_WORKFLOW, HOOK, ROOT, TOOL_PATH, TRUSTED_EVENTS

REPOSITORY = "octo-org/mmgen-harness"
GOOD = {
    "GITHUB_REPOSITORY": REPOSITORY,
    "GITHUB_WORKFLOW_REF": f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/heads/main",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_REF": "refs/heads/main",
}
BAD = {
    "fork pull request pointing ci.yml at the GPU": dict(
        GITHUB_WORKFLOW_REF=f"{REPOSITORY}/.github/workflows/ci.yml@refs/pull/7/merge",
        GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge"),
    "pull request adding a trigger to benchmarks.yml": dict(
        GITHUB_WORKFLOW_REF=f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/pull/7/merge",
        GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge"),
    "pull_request_target": dict(GITHUB_EVENT_NAME="pull_request_target"),
    "workflow_run": dict(GITHUB_EVENT_NAME="workflow_run"),
    "another workflow on main": dict(GITHUB_WORKFLOW_REF=f"{REPOSITORY}/.github/workflows/ci.yml@refs/heads/main"),
    "the benchmark workflow on another branch": dict(
        GITHUB_WORKFLOW_REF=f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/heads/feature", GITHUB_REF="refs/heads/feature"),
    "a tag": dict(GITHUB_WORKFLOW_REF=f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/tags/v1", GITHUB_REF="refs/tags/v1"),
    "workflow file of another ref than the job's": dict(
        GITHUB_WORKFLOW_REF=f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/heads/feature"),
    "another repository": dict(GITHUB_REPOSITORY="mallory/mmgen-harness",
                               GITHUB_WORKFLOW_REF=f"mallory/mmgen-harness/{BENCHMARK_WORKFLOW}@refs/heads/main"),
    "a look-alike workflow path": dict(GITHUB_WORKFLOW_REF=f"{REPOSITORY}/{BENCHMARK_WORKFLOW}.evil@refs/heads/main"),
    "no workflow ref": dict(GITHUB_WORKFLOW_REF=""),
    "no event": dict(GITHUB_EVENT_NAME=""),
}


def installed_hook(folder: Path, settings: str | None = f"HARNESS_REPOSITORY={REPOSITORY}\n") -> Path:
    """The hook installed as docs/ci.md installs it: a copy on the host, its settings file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    hook = folder / "job-started.sh"
    shutil.copy(HOOK, hook)
    if settings is not None:
        (folder / "job-started.env").write_text(settings)
    return hook


def run_hook(hook: Path, **env: str) -> subprocess.CompletedProcess:
    # As the runner runs it: `bash -e <file>`, with the job's default variables and nothing of ours.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run(["bash", "-e", str(hook)], env=clean, capture_output=True, text=True, timeout=30)


def test_hook_admits_the_benchmark_workflow_on_main(tmp_path):
    """The job-started hook admits this repository's benchmark workflow on main for push, schedule and
    workflow_dispatch."""
    hook = installed_hook(tmp_path)
    for event in sorted(TRUSTED_EVENTS):
        done = run_hook(hook, **{**GOOD, "GITHUB_EVENT_NAME": event})
        assert done.returncode == 0, done.stderr
        assert "admitted" in done.stdout


@pytest.mark.parametrize("job", sorted(BAD))
def test_hook_refuses_every_other_job(tmp_path, job):
    """The job-started hook refuses (non-zero, with an ::error:: line) every job that is not the benchmark
    workflow of this repository on main for a trusted event."""
    done = run_hook(installed_hook(tmp_path), **{**GOOD, **BAD[job]})
    assert done.returncode != 0, f"{job} was admitted: {done.stdout}"
    assert "::error::GPU runner job-started hook refused this job" in done.stderr


def test_hook_refuses_everything_without_its_settings(tmp_path):
    """Without its settings file, or without the repository in it, the hook refuses even a good job (it
    never trusts the job's own environment for what to allow)."""
    assert run_hook(installed_hook(tmp_path / "none", settings=None), **GOOD).returncode != 0
    empty = installed_hook(tmp_path / "empty", settings="# nothing\n")
    assert run_hook(empty, **GOOD).returncode != 0
    smuggled = {**GOOD, "HARNESS_REPOSITORY": REPOSITORY, "HARNESS_EVENTS": "pull_request"}
    assert run_hook(empty, **smuggled).returncode != 0, "settings from the job's environment are ignored"
    pull = {**BAD["pull request adding a trigger to benchmarks.yml"], "HARNESS_EVENTS": "pull_request",
            "HARNESS_REFS": "refs/pull/7/merge"}
    assert run_hook(installed_hook(tmp_path / "set"), **{**GOOD, **pull}).returncode != 0


def test_hook_is_installed_by_the_runner_set_up_guide():
    """docs/ci.md installs the hook (ACTIONS_RUNNER_HOOK_JOB_STARTED), uses ephemeral just-in-time runners and
    limits the runner group to the benchmark workflow."""
    guide = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    for needed in ("ACTIONS_RUNNER_HOOK_JOB_STARTED", ".github/runner/job-started.sh", "job-started.env",
                   "--ephemeral", "generate-jitconfig", "Selected workflows", BENCHMARK_WORKFLOW + "@refs/heads/main"):
        assert needed in guide, needed


def test_hook_passes_shellcheck():
    """The hook script passes shellcheck, where shellcheck is installed."""
    shellcheck = shutil.which("shellcheck", path=TOOL_PATH)
    if not shellcheck:
        pytest.skip("shellcheck is not installed")
    done = subprocess.run([shellcheck, str(HOOK)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


PULL = {
    "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge",
    "GITHUB_WORKFLOW_REF": f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/pull/7/merge", "GITHUB_JOB": "ab",
}
WITH_LABEL = f"HARNESS_REPOSITORY={REPOSITORY}\nHARNESS_PULL_REQUEST_LABEL=benchmark\n"


def pull_payload(folder: Path, head: str = REPOSITORY, action: str = "labeled", label: str = "benchmark") -> str:

    path = folder / "event.json"
    path.write_text(json.dumps({"action": action, "label": {"name": label},
                                "pull_request": {"head": {"repo": {"full_name": head}}}}))
    return str(path)


def test_hook_admits_the_ab_job_of_a_labeled_pull_request_from_this_repository(tmp_path):
    """Where the host names the label, the A/B job of a pull request from a branch of this repository is admitted."""
    done = run_hook(installed_hook(tmp_path, WITH_LABEL), **PULL, GITHUB_EVENT_PATH=pull_payload(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "admitted" in done.stdout


@pytest.mark.parametrize("change", [
    {"payload": {"head": "mallory/mmgen-harness"}},  # a fork
    {"payload": {"label": "other"}},
    {"payload": {"action": "synchronize"}},
    {"env": {"GITHUB_JOB": "benchmark"}},
    {"env": {"GITHUB_REF": "refs/heads/feature", "GITHUB_WORKFLOW_REF": f"{REPOSITORY}/{BENCHMARK_WORKFLOW}@refs/heads/feature"}},
    {"env": {"GITHUB_WORKFLOW_REF": f"{REPOSITORY}/.github/workflows/ci.yml@refs/pull/7/merge"}},
    {"env": {"GITHUB_EVENT_PATH": "/nonexistent/event.json"}},
    {"settings": f"HARNESS_REPOSITORY={REPOSITORY}\n"},  # the host admits no pull requests
], ids=["fork", "other-label", "not-labeled", "other-job", "branch-ref", "other-workflow", "no-payload", "not-enabled"])
def test_hook_refuses_other_pull_request_jobs(tmp_path, change):
    """A fork's pull request, another label or action, another job or workflow, no payload, or a host that
    admits no pull requests: refused."""
    env = {**PULL, "GITHUB_EVENT_PATH": pull_payload(tmp_path, **change.get("payload", {})), **change.get("env", {})}
    done = run_hook(installed_hook(tmp_path / "hook", change.get("settings", WITH_LABEL)), **env)
    assert done.returncode != 0, done.stdout
    assert "::error::GPU runner job-started hook refused this job" in done.stderr
