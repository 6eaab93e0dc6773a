"""Smoke checks that run the benchmark suites themselves: each family on its CUDA ladder (tiny
preset, a short case list, few iterations) and the overhead suite, each in a pytest subprocess
(harness/ never imports pytest), judged from the results file the run writes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.smoke.base import Found, SmokeContext
from harness.store.records import load_results

ROOT = Path(__file__).resolve().parents[2]  # the checkout: suites/ and the root conftest.py
# Exit statuses a measuring run may end with here: 0, or 12 (cases not judged: the smoke run has
# no baselines, by design). Anything else is a failed test, an error or a regression.
ACCEPTED_EXITS = (0, 12)
COMMON = ("--preset", "tiny", "--warmup", "1", "-q", "-p", "no:cacheprovider")


@dataclass(frozen=True)
class Ladder:
    """One family's cases: suite files, a -k keyword (case ids), the stacks, the iterations."""

    suites: tuple[str, ...]
    keyword: str
    stacks: tuple[str, ...]
    iterations: int = 3
    timeout_s: float = 240


# The review's smoke procedure (docs/smoke.md): what each family must show once on the GPU. Eager
# int8dq at batch 1 is refused on CUDA (torch._int_mm needs more than 16 rows, and torchao would time
# a float32 fallback): the compiled int8dq stack is the int8 path checked at one row.
LADDERS = {
    "llama": Ladder(
        ("suites/test_llama.py", "suites/test_where_time_goes.py"), "b1-p128-g64",
        ("eager", "sdpa", "sdpa+static", "sdpa+compile", "sdpa+static+cudagraphs", "sdpa+static+compile+cudagraphs",
         "sdpa+static+compile+int8dq", "sdpa+int4wo"),
    ),
    "hstu": Ladder(("suites/test_hstu.py",), "rank and longtail",
                   ("padded", "fixed", "fixed+cudagraphs", "fixed+compile+cudagraphs", "fixed+flex"), timeout_s=120),
    "chameleon": Ladder(("suites/test_chameleon.py",), "chameleon-it- or chameleon-ti-",
                        ("eager", "sdpa+static+cudagraphs"), iterations=1, timeout_s=120),
    "seamless": Ladder(("suites/test_seamless.py",), "(seamless-st- and beam4) or (seamless-ts- and greedy)",
                       ("eager", "sdpa", "sdpa+static+inplace-reorder+compile"), timeout_s=120),
}


def pytest_command(ladder: Ladder, ctx: SmokeContext, results_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "pytest", *ladder.suites, "-k", ladder.keyword, "--benchmark", "--device", ctx.device,
        "--stacks", ",".join(ladder.stacks), "--iterations", str(ladder.iterations), "--results-dir", str(results_dir),
        "--baseline-dir", str(results_dir / "no-baselines"), "--trace-dir", str(results_dir / "traces"), *COMMON,
    ]


def run_pytest(args: list[str], timeout_s: float) -> tuple[int, str]:
    """Exit status and the output's last lines (124 when it ran past its time)."""
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"ran past {timeout_s:g} s"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, lines[-1] if lines else ""


def judge_cases(cases: list[dict]) -> tuple[bool, str, dict]:
    """Every case measured (status ok, its evidence recorded); the others named with their message."""
    bad = {case["id"]: f"{case['status']}: {case.get('message', '')}"[:200] for case in cases if case["status"] != "ok"}
    figures = {"cases": len(cases), "not_ok": bad,
               "evidence": {case["stack"]: case.get("evidence", {}) for case in cases if case["status"] == "ok"}}
    detail = f"{len(cases) - len(bad)}/{len(cases)} cases ok" + (f"; first: {next(iter(bad.items()))}" if bad else "")
    return bool(cases) and not bad, detail, figures


def check_ladder(family: str, ctx: SmokeContext) -> Found:
    ladder = LADDERS[family]
    results_dir = ctx.work_dir / family
    status, last = run_pytest(pytest_command(ladder, ctx, results_dir), min(ladder.timeout_s, ctx.remaining_s()))
    files = sorted(results_dir.glob("run-*.json"))
    if status not in ACCEPTED_EXITS or not files:
        return Found(False, f"pytest exit {status}: {last}", {"exit": status})
    passed, detail, figures = judge_cases(load_results(files[-1], ("id", "stack", "status"))["cases"])
    return Found(passed, detail, {"exit": status, "results": str(files[-1]), **figures})


OVERHEAD_TIMEOUT_S = 90


def check_overhead(ctx: SmokeContext) -> Found:
    """The overhead suite's quick mode: the harness's loop and a bare loop choose the same tokens."""
    args = [sys.executable, "-m", "pytest", "suites/test_overhead.py", "--device", ctx.device, *COMMON]
    status, last = run_pytest(args, min(OVERHEAD_TIMEOUT_S, ctx.remaining_s()))
    return Found(status == 0, f"pytest exit {status}: {last}", {"exit": status})
