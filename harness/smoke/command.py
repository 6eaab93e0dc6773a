"""`harness smoke`: the table of checks, run in order, one JSON verdict written atomically, a short
table printed. Without a visible GPU it stops at once with exit 10, unless --dry-run runs the
CPU-runnable checks on the CPU."""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

from harness.errors import EXIT_SMOKE_FAILED, HarnessError, unknown_choice
from harness.smoke.base import Check, SmokeContext, Verdict, judge

NO_GPU = "no CUDA device visible: harness smoke needs one GPU (--dry-run runs its CPU-runnable checks on the CPU)"
BUDGET_S = 480  # the smoke run's promise: all of it within 8 minutes on one H200, from a cold start


def checks() -> tuple[Check, ...]:
    """Every check, in run order: the cheap primitives first, so that a broken clock shows before
    the suites spend minutes measuring with it."""
    from harness.smoke import decoding, suites, timing

    ladders = tuple(
        Check(f"ladder_{family}", f"{family}'s CUDA ladder: every case measured, evidence recorded",
              partial(suites.check_ladder, family))
        for family in suites.LADDERS
    )
    return (
        Check("env", "the environment block: one GPU, torch, transformers and torchao versions", timing.check_env, cpu=True),
        Check("clock", "the run's clock reads known sleeps; a mark costs microseconds", timing.check_clock, cpu=True),
        Check("clock_gpu_sleep", "events time GPU work; marks never synchronize", timing.check_gpu_sleep),
        Check("peak_memory", "the peak-memory method sees a known allocation", timing.check_peak_memory, cpu=True),
        Check("device_peaks", "copy bandwidth and matmul throughput are plausible", timing.check_device_peaks, cpu=True),
        Check("inductor_isolation", "quantizing leaves torch._inductor.config unchanged",
              decoding.check_inductor_isolation, cpu=True),
        Check("quantization", "every scheme replaces every linear and runs", decoding.check_quantization, cpu=True),
        Check("graph_replay", "CUDA-graph replay is bit-identical to eager at two prompt lengths",
              decoding.check_graph_replay),
        Check("compile", "the compiled decode step: graphs, no breaks, no recompiles", decoding.check_compile, cpu=True),
        *ladders,
        Check("overhead", "the overhead suite's loops choose the same tokens", suites.check_overhead),
    )


def selected(names: str) -> tuple[Check, ...]:
    table = checks()
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    known = {check.name for check in table}
    for name in wanted:
        if name not in known:
            raise unknown_choice("smoke check", name, known)
    return tuple(check for check in table if not wanted or check.name in wanted)


def smoke_device(args: argparse.Namespace) -> str:
    """The device the checks run on: the GPU, or the CPU for a dry run; no GPU is exit 10."""
    import torch

    if args.dry_run:
        return "cpu"
    if not torch.cuda.is_available():
        raise HarnessError(NO_GPU)
    from harness.measure.case import use_device

    use_device(args.device)
    return args.device


def cmd_smoke(args: argparse.Namespace) -> int:
    from harness.store.records import write_json_atomic

    table = selected(args.checks)
    device = smoke_device(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="harness-smoke-") as scratch:
        work_dir = Path(args.work_dir) if args.work_dir else Path(scratch)
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
        ctx = SmokeContext(device, dtype, work_dir, deadline_s=started + args.budget_s)
        verdicts = [judge(check, ctx) for check in table]
    wall_s = time.perf_counter() - started
    failed = [v.name for v in verdicts if v.status == "fail"]
    record = {"kind": "harness-smoke", "device": device, "dry_run": args.dry_run, "wall_s": round(wall_s, 3),
              "budget_s": args.budget_s, "passed": not failed, "failed": failed,
              "checks": [v.to_record() for v in verdicts]}
    write_json_atomic(Path(args.out), record)
    print_table(verdicts, device, wall_s, args.budget_s, Path(args.out))
    return EXIT_SMOKE_FAILED if failed else 0


def print_table(verdicts: list[Verdict], device: str, wall_s: float, budget_s: float, out: Path) -> None:
    from rich.table import Table

    from harness.publish.console import wide_console

    table = Table(title=f"harness smoke on {device}: {wall_s:.1f} s (budget {budget_s:g} s)")
    for column in ("check", "status", "s", "detail"):
        table.add_column(column)
    for verdict in verdicts:
        table.add_row(verdict.name, verdict.status.upper(), f"{verdict.seconds:.1f}", verdict.detail)
    console = wide_console()
    console.print(table)
    console.print(f"verdict written to {out}")


def add_smoke_command(commands) -> None:
    smoke = commands.add_parser("smoke", help="run every CUDA path once with its evidence checked (docs/smoke.md)")
    smoke.add_argument("--device", default="cuda", help="the GPU to check (default: %(default)s)")
    smoke.add_argument("--dry-run", action="store_true", help="run the CPU-runnable checks on the CPU; skip the others")
    smoke.add_argument("--budget-s", type=float, default=BUDGET_S,
                       help="seconds for the whole run: a suite is stopped there, later checks fail as not run "
                       "(default: %(default)s)")
    smoke.add_argument("--checks", default="", help="comma list of check names (default: all)")
    smoke.add_argument("--out", default="results/smoke.json", help="the JSON verdict (default: %(default)s)")
    smoke.add_argument("--work-dir", default="", help="keep the suites' results and traces here (default: a temp folder)")
    smoke.set_defaults(run=cmd_smoke)

