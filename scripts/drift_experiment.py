#!/usr/bin/env python3
"""The CPU's between-process drift: one workload measured in many fresh processes per setting
(thread count, thread pinning, allocator settings, warm or cold inductor cache), the settings
taking turns so that the machine's own drift over the experiment falls on all of them alike.
Results and the table: docs/drift.md.

  python scripts/drift_experiment.py --processes 10 --out drift.json
  python scripts/drift_experiment.py --table drift.json      # the Markdown table of a results file

Each process measures llama `b4-p32-g32` `sdpa` and `sdpa+static+compile` in interleaved rounds
(harness.measure.workload) and prints one JSON line: per stack the median e2e and TPOT, and the
machine-speed probe's median. A setting's spread is that of its processes' medians.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKLOAD = "llama-tt-tiny-b4-p32-g32-fp32"
STACKS = ("sdpa", "sdpa+static+compile")
PINNED = {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}
# glibc's dynamic mmap threshold moves with the process's history; fixed thresholds keep big
# tensors on one path (mmap) and stop trimming the heap top, in every process alike.
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "268435456", "MALLOC_ARENA_MAX": "2"}
SETTINGS: dict[str, dict] = {
    "default": {"env": {}, "cpus": None},
    "threads1": {"env": {"OMP_NUM_THREADS": "1"}, "cpus": None},
    "threads2-pinned": {"env": {"OMP_NUM_THREADS": "2", **PINNED}, "cpus": "0,1"},
    "threads1-pinned": {"env": {"OMP_NUM_THREADS": "1", **PINNED}, "cpus": "0"},
    "fixed-malloc": {"env": FIXED_MALLOC, "cpus": None},
    "cold-inductor": {"env": {}, "cpus": None, "cold": True},
}


def worker(iterations: int) -> dict:
    """One process's measurement (run with --worker)."""
    import torch

    from harness.analyse.gate import metric_samples
    from harness.measure.case import RunContext
    from harness.measure.workload import WorkloadRun
    from harness.options import RunOptions
    from harness.spec.selection import select

    options = RunOptions(benchmark=True, iterations=iterations, warmup=2, contention_ratio=0, stacks=",".join(STACKS))
    cases = [case for case in select(options, False).expand("llama")[0] if case.workload_id == WORKLOAD]
    results = WorkloadRun(cases, RunContext(options, "cpu")).run()
    found: dict = {"threads": torch.get_num_threads()}
    for result in results.values():
        record = result.to_record()
        found[record["stack"]] = {
            "status": record["status"],
            "e2e_p50_s": statistics.median(record["e2e_s"]) if record["e2e_s"] else None,
            "tpot_p50_s": statistics.median(metric_samples(record, "tpot_s")) if record["e2e_s"] else None,
            "first_call_s": record["first_call_s"][0] if record["first_call_s"] else None,
        }
        found["probe_p50_s"] = statistics.median(record["calibration_s"]) if record["calibration_s"] else None
    return found


def run_one(name: str, iterations: int, warm_cache: str) -> dict:
    setting = SETTINGS[name]
    env = {**os.environ, **setting["env"]}
    with tempfile.TemporaryDirectory() as cold:
        env["TORCHINDUCTOR_CACHE_DIR"] = cold if setting.get("cold") else warm_cache
        command = [sys.executable, __file__, "--worker", "--iterations", str(iterations)]
        if setting["cpus"]:
            command = ["taskset", "-c", setting["cpus"], *command]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"setting": name, "error": done.stderr[-2000:]}
    return {"setting": name, **json.loads(lines[-1])}


def spread(values: list[float]) -> dict:
    """max/min, and the standard deviation of the logs (the per-process noise a gate sees)."""
    logs = [math.log(v) for v in values]
    return {"n": len(values), "max_over_min": max(values) / min(values), "log_sd": statistics.stdev(logs) if len(logs) > 1 else 0.0}


def table(rows: list[dict]) -> str:
    """Per setting and stack: processes, median e2e, max/min and log-sd of e2e and TPOT, probe's max/min."""
    lines = ["| setting | stack | processes | e2e p50 (ms) | e2e max/min | e2e log-sd | TPOT max/min | TPOT log-sd | probe max/min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in SETTINGS:
        mine = [row for row in rows if row["setting"] == name and "error" not in row]
        for stack in STACKS:
            ok = [row for row in mine if row.get(stack, {}).get("status") == "ok"]
            if len(ok) < 2:
                continue
            e2e = spread([row[stack]["e2e_p50_s"] for row in ok])
            tpot = spread([row[stack]["tpot_p50_s"] for row in ok])
            probe = spread([row["probe_p50_s"] for row in ok])
            median_ms = 1e3 * statistics.median(row[stack]["e2e_p50_s"] for row in ok)
            lines.append(f"| {name} | {stack} | {len(ok)} | {median_ms:.2f} | {e2e['max_over_min']:.3f} | {e2e['log_sd']:.3f} "
                         f"| {tpot['max_over_min']:.3f} | {tpot['log_sd']:.3f} | {probe['max_over_min']:.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--processes", type=int, default=10, help="processes per setting")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma list of settings")
    parser.add_argument("--out", type=Path, default=Path("drift.json"))
    parser.add_argument("--table", type=Path, help="print the Markdown table of a results file and stop")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.iterations)))
        return 0
    if args.table:
        print(table(json.loads(args.table.read_text())["rows"]))
        return 0
    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as warm_cache:
        run_one("default", args.iterations, warm_cache)  # fills the warm inductor cache; not counted
        for index in range(args.processes):
            for name in names:  # settings take turns: the machine's drift falls on all alike
                rows.append(run_one(name, args.iterations, warm_cache))
                print(f"[{index + 1}/{args.processes}] {name}: {json.dumps(rows[-1])[:200]}", file=sys.stderr, flush=True)
                tmp = args.out.with_suffix(".tmp")
                tmp.write_text(json.dumps({"workload": WORKLOAD, "stacks": STACKS, "rows": rows}, indent=1))
                tmp.replace(args.out)  # written after every process: nothing lost on a crash
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
