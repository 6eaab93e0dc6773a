"""`harness smoke`: exit 10 with one line without a GPU, its CPU-runnable checks pass in a dry run, and
its verdict file and table say which checks ran, passed, failed or were skipped."""

import json

import pytest
import torch

from harness import cli
from harness.errors import EXIT_HARNESS_ERROR, EXIT_SMOKE_FAILED
from harness.smoke import command, suites
from harness.smoke.base import Check, Found, SmokeContext, judge


def test_without_a_gpu_smoke_exits_10_with_one_line(monkeypatch, tmp_path, capsys):
    """No visible CUDA device: exit 10, one line on stderr, and no verdict file."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "smoke.json"
    assert cli.main(["smoke", "--out", str(out)]) == EXIT_HARNESS_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"harness: error: {command.NO_GPU}"]
    assert not out.exists()


def test_the_cpu_runnable_checks_pass_in_a_dry_run(tmp_path, capsys):
    """A dry run runs every CPU-runnable check on the CPU, each passes, and the CUDA-only ones are skipped."""
    out = tmp_path / "smoke.json"
    assert cli.main(["smoke", "--dry-run", "--out", str(out)]) == 0
    verdict = json.loads(out.read_text())
    statuses = {check["name"]: check["status"] for check in verdict["checks"]}
    cpu_checks = {check.name for check in command.checks() if check.cpu}
    assert {name for name, status in statuses.items() if status == "pass"} == cpu_checks
    assert {name for name, status in statuses.items() if status == "skip"} == set(statuses) - cpu_checks
    assert verdict["passed"] and verdict["device"] == "cpu" and verdict["dry_run"]
    assert "inductor_isolation" in capsys.readouterr().out


def test_a_failing_check_fails_the_run_and_keeps_the_others(monkeypatch, tmp_path):
    """One check that raises is that check's failure (exit 14); the others still run and are recorded."""
    table = (Check("boom", "raises", lambda ctx: 1 / 0, cpu=True), Check("fine", "passes", lambda ctx: Found(True, "ok"), cpu=True))
    monkeypatch.setattr(command, "checks", lambda: table)
    out = tmp_path / "smoke.json"
    assert cli.main(["smoke", "--dry-run", "--out", str(out)]) == EXIT_SMOKE_FAILED
    verdict = json.loads(out.read_text())
    assert verdict["failed"] == ["boom"]
    assert [c["status"] for c in verdict["checks"]] == ["fail", "pass"]
    assert verdict["checks"][0]["detail"].startswith("ZeroDivisionError")


def test_an_unknown_check_name_is_refused():
    """--checks names must be checks of the table; a typo is exit 10, not an empty run."""
    assert cli.main(["smoke", "--dry-run", "--checks", "clokc"]) == EXIT_HARNESS_ERROR


def test_cuda_only_checks_are_skipped_on_the_cpu(tmp_path):
    """A check without cpu=True is skipped (not run, not failed) on the CPU."""
    ctx = SmokeContext("cpu", "float32", tmp_path)
    verdict = judge(Check("gpu", "needs a GPU", lambda ctx: pytest.fail("ran on the CPU")), ctx)
    assert verdict.status == "skip"


def test_a_ladder_is_judged_from_its_results_file():
    """A ladder passes only when every case of its results file is ok; others are named."""
    ok = {"id": "a", "stack": "eager", "status": "ok", "evidence": {}}
    bad = {"id": "b", "stack": "sdpa", "status": "mismatch", "message": "token 3"}
    assert suites.judge_cases([ok])[0]
    passed, detail, figures = suites.judge_cases([ok, bad])
    assert not passed and "1/2" in detail and figures["not_ok"] == {"b": "mismatch: token 3"}
    assert not suites.judge_cases([])[0]


def test_the_ladder_commands_measure_on_the_device_without_baselines(tmp_path):
    """Each family's ladder runs pytest with --benchmark on the smoke device, the tiny preset and its stacks."""
    ctx = SmokeContext("cuda", "bfloat16", tmp_path)
    for family, ladder in suites.LADDERS.items():
        args = suites.pytest_command(ladder, ctx, tmp_path / family)
        assert args[args.index("--device") + 1] == "cuda" and args[args.index("--preset") + 1] == "tiny"
        assert "--benchmark" in args and args[args.index("--stacks") + 1] == ",".join(ladder.stacks)
        assert all((suites.ROOT / suite).exists() for suite in ladder.suites)


def test_a_spent_budget_fails_the_checks_it_could_not_run(tmp_path):
    """With no time left, every check that would run fails as not run (exit 14): a run that checked
    nothing never passes."""
    out = tmp_path / "smoke.json"
    assert cli.main(["smoke", "--dry-run", "--budget-s", "0", "--checks", "env,clock", "--out", str(out)]) == EXIT_SMOKE_FAILED
    verdict = json.loads(out.read_text())
    assert [c["detail"] for c in verdict["checks"]] == ["not run: the smoke run's time budget was spent"] * 2
