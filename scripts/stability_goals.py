#!/usr/bin/env python3
"""Issue 13's goals, measured: runs of the tiny matrix, some under an intermittent background
load on every core, and how far each family's combined ladder speed-up and each ladder step
moved against the quiet runs' geometric mean. Ratios within one run; no wall-clock asserts.

  python scripts/stability_goals.py --quiet 2 --loaded 1 --out goals/      # runs, then the report
  python scripts/stability_goals.py --report-only --out goals/            # report the runs already there

The load: one process per core, each busy for 2-5 s then idle for 2-5 s (seeded), for the whole
run, as other jobs come and go on a shared runner.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from harness.analyse.ladder import LadderSummary, summarize
from harness.measure.rounds import run_figures
from harness.store.records import load_results

COMBINED_GOAL = 0.10  # each family's combined speed-up within 10% of the quiet runs' geomean
STEP_GOAL = 0.15  # no ladder step moved by more than 15%


def _spin_and_idle(seed: int, stop) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        until = time.perf_counter() + rng.uniform(2, 5)
        while time.perf_counter() < until and not stop.is_set():
            pass
        stop.wait(rng.uniform(2, 5))


def run_matrix(out: Path, name: str, loaded: bool, extra: list[str]) -> dict:
    """One run of `pytest suites/ --benchmark` into out/name; its wall time, exit code and results file."""
    results_dir = out / name
    stop = multiprocessing.Event()
    load = [multiprocessing.Process(target=_spin_and_idle, args=(seed, stop), daemon=True)
            for seed in range(os.cpu_count() or 1)] if loaded else []
    for process in load:
        process.start()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "suites/", "--benchmark", "-q", "-p", "no:cacheprovider",
                           "--results-dir", str(results_dir), *extra], capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    stop.set()
    for process in load:
        process.join()
    (out / f"{name}.log").write_text(done.stdout + done.stderr)
    files = sorted(results_dir.glob("run-*.json"))
    return {"name": name, "loaded": loaded, "exit": done.returncode, "wall_s": wall_s,
            "results": str(files[-1]) if files else ""}


def steps_of(summary: LadderSummary) -> dict[tuple[str, str], float]:
    return {(ladder.workload_id, step.stack): step.step.estimate
            for ladder in summary.ladders for step in ladder.steps if step.step is not None}


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def rounds_figures(records: list[dict]) -> dict:
    found = run_figures(records)
    return {"rounds": found["rounds"], "contended": found["contended"], "reruns": found["reruns"],
            "contended_cases": len(found["contended_cases"]),
            "failed_cases": sum(1 for r in records if r["status"] not in ("ok", "contended"))}


def report(runs: list[dict]) -> dict:
    """Per run: combined speed-ups, their distance from the quiet geomean, the worst step move."""
    summaries = {run["name"]: summarize(load_results(Path(run["results"]))["cases"]) for run in runs}
    quiet = [run["name"] for run in runs if not run["loaded"]]
    families = sorted({family for s in summaries.values() for family in s.per_family})
    reference = {family: geomean([summaries[name].per_family[family].estimate for name in quiet
                                  if family in summaries[name].per_family]) for family in families}
    step_keys = set.intersection(*(set(steps_of(summaries[name])) for name in quiet))
    step_reference = {key: geomean([steps_of(summaries[name])[key] for name in quiet]) for key in step_keys}
    found = []
    for run in runs:
        summary = summaries[run["name"]]
        combined = {family: summary.per_family[family].estimate for family in families if family in summary.per_family}
        moves = {family: value / reference[family] - 1 for family, value in combined.items()}
        steps = steps_of(summary)
        step_moves = {f"{w} {s}": steps[(w, s)] / ref - 1 for (w, s), ref in step_reference.items() if (w, s) in steps}
        worst = max(step_moves.items(), key=lambda item: abs(item[1]), default=("", 0.0))
        records = load_results(Path(run["results"]))["cases"]
        found.append({**run, "combined": combined, "combined_move": moves, "worst_step": worst,
                      "combined_ok": all(abs(m) <= COMBINED_GOAL for m in moves.values()),
                      "steps_ok": abs(worst[1]) <= STEP_GOAL, **rounds_figures(records)})
    return {"reference": reference, "runs": found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quiet", type=int, default=2, help="quiet runs")
    parser.add_argument("--loaded", type=int, default=1, help="runs under the intermittent load")
    parser.add_argument("--out", type=Path, default=Path("goals"))
    parser.add_argument("--report-only", action="store_true", help="report the runs recorded in --out/runs.json")
    args, extra = parser.parse_known_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs_file = args.out / "runs.json"
    if not args.report_only:
        plan = ["quiet"] * args.quiet + ["loaded"] * args.loaded
        runs = []
        for index, kind in enumerate(plan):
            print(f"run {index + 1}/{len(plan)} ({kind})", file=sys.stderr, flush=True)
            runs.append(run_matrix(args.out, f"{kind}{index}", kind == "loaded", extra))
            runs_file.write_text(json.dumps(runs, indent=1))
    else:
        runs = json.loads(runs_file.read_text())
    found = report(runs)
    (args.out / "report.json").write_text(json.dumps(found, indent=1, default=str))
    print(json.dumps(found, indent=1, default=str))
    return 0 if all(r["combined_ok"] and r["steps_ok"] and not r["failed_cases"] for r in found["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
