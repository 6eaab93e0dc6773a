"""The A/B gate's goals, measured (issue 14; docs/ab.md has the figures):

  aa      the same revision on both sides, --repeats times: false alarms per metric
  slow10  a commit planting a busy-wait in every nn.Linear forward, sized to make e2e about 10%
          slower: the share of repeats that exit 11 (regressed)
  slow5   the same at about 5%
  matrix  one A/B of the tiny llama matrix's five stacks: wall time, pairs used against the maximum

    python scripts/ab_goals.py --out goals/ [--goals aa,slow10,slow5,matrix] [--repeats 20]

Planted commits are made in a temporary detached worktree of the current (clean) HEAD and the
worktree removed; nothing in this checkout or its branches changes. Each repeat is a separate
`harness ab` process with its own seed; its record is kept under --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLANT_FILE = "harness/families/models.py"
PLANT = '''

# Planted by scripts/ab_goals.py: a busy-wait of {delay_s!r} s in every nn.Linear forward.
import time as _planted_time  # noqa: E402


def _planted_forward(self, x, _forward=torch.nn.Linear.forward):
    end = _planted_time.perf_counter() + {delay_s!r}
    while _planted_time.perf_counter() < end:
        pass
    return _forward(self, x)


torch.nn.Linear.forward = _planted_forward
'''
FIVE_STACKS = "eager,sdpa,sdpa+static,sdpa+compile,sdpa+static+compile"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=ab-goals", "-c", "user.email=ab-goals@localhost",
                           *args], capture_output=True, text=True, check=True).stdout.strip()


def calibrate(frac: float, families: str, stacks: str, keyword: str) -> tuple[float, dict]:
    """The busy-wait per Linear call that adds `frac` of the cases' mean e2e: e2e and Linear calls
    per iteration measured here, in-process, on the cases the goal runs."""
    import torch

    from harness.ab.worker import Worker

    calls = [0]
    torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, _: calls.__setitem__(0, calls[0] + isinstance(module, torch.nn.Linear)))
    worker = Worker()
    ids = [c["id"] for c in worker.plan({"families": families, "stacks": stacks}, keyword)["cases"]]
    worker.prepare(ids, tempfile.mkdtemp(), "base")
    e2e, per_iteration = [], []
    for case_id in ids:
        calls[0] = 0
        found = worker.chunk(case_id, [0, 1, 2, 3])["iterations"]
        per_iteration.append(calls[0] / len(found))
        e2e += [it["e2e_s"] for it in found]
    mean_e2e = sum(e2e) / len(e2e)
    delay_s = frac * mean_e2e / (sum(per_iteration) / len(per_iteration))
    return delay_s, {"mean_e2e_s": mean_e2e, "linear_calls_per_iteration": per_iteration, "delay_s": delay_s}


def planted_commit(delay_s: float) -> str:
    """A commit on top of HEAD that plants the busy-wait, made in a temporary worktree."""
    with tempfile.TemporaryDirectory(prefix="ab-goals-") as folder:
        tree = Path(folder) / "tree"
        git("worktree", "add", "--detach", "--quiet", str(tree), "HEAD")
        try:
            with open(tree / PLANT_FILE, "a", encoding="utf-8") as stream:
                stream.write(PLANT.format(delay_s=delay_s))
            git("commit", "-q", "-am", f"plant a {delay_s * 1e6:.1f} us busy-wait in every nn.Linear forward", cwd=tree)
            return git("rev-parse", "HEAD", cwd=tree)
        finally:
            git("worktree", "remove", "--force", str(tree))


def ab(base: str, head: str, out: Path, seed: int, selection: list[str]) -> dict:
    started = time.perf_counter()
    command = [sys.executable, "-m", "harness", "ab", base, head, *selection, "--seed", str(seed), "--results-dir", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    (out / "log.txt").write_text(done.stdout + done.stderr)
    records = sorted(out.glob("ab-*.json"))
    if not records:
        raise SystemExit(f"no A/B record in {out} (exit {done.returncode}); see {out / 'log.txt'}")
    data = json.loads(records[-1].read_text())
    return {"exit": done.returncode, "wall_s": time.perf_counter() - started, "savings": data["savings"],
            "verdicts": {c["id"]: {m: d["status"] for m, d in c["decisions"].items()} | {"case": c["verdict"]}
                         for c in data["cases"]},
            "ratios": {c["id"]: {m: d["ratio"] for m, d in c["decisions"].items()} for c in data["cases"]}}


def tally(runs: list[dict]) -> dict:
    metrics = [v for run in runs for case in run["verdicts"].values() for m, v in case.items() if m != "case"]
    return {"repeats": len(runs), "exit_11": sum(r["exit"] == 11 for r in runs),
            "exits": sorted(r["exit"] for r in runs), "metric_verdicts": len(metrics),
            "metric_regressed": metrics.count("regressed"), "metric_inconclusive": metrics.count("inconclusive"),
            "median_wall_s": sorted(r["wall_s"] for r in runs)[len(runs) // 2],
            "pairs_used": sum(r["savings"]["pairs_used"] for r in runs), "pairs_max": sum(r["savings"]["pairs_max"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--goals", default="aa,slow10,slow5,matrix")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--stacks", default="eager,sdpa", help="stacks of the repeated goals")
    parser.add_argument("-k", dest="keyword", default="b4-p32-g32", help="case filter of the repeated goals")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = git("rev-parse", "HEAD")
    selection = ["--families", "llama", "--stacks", args.stacks, "-k", args.keyword]
    summary: dict = {"head": head, "selection": selection}
    for goal in args.goals.split(","):
        target, plan = head, {}
        if goal.startswith("slow"):
            delay_s, plan = calibrate(int(goal[4:]) / 100, "llama", args.stacks, args.keyword)
            target = planted_commit(delay_s)
        if goal == "matrix":
            summary[goal] = ab(head, head, out / goal, 0, ["--families", "llama", "--stacks", FIVE_STACKS])
        else:
            runs = []
            for repeat in range(args.repeats):
                runs.append(ab(head, target, out / goal / f"r{repeat:02d}", repeat, selection))
                print(f"{goal} {repeat + 1}/{args.repeats}: exit {runs[-1]['exit']} in {runs[-1]['wall_s']:.0f} s", flush=True)
            summary[goal] = {"plant": plan, "commit": target, **tally(runs), "runs": runs}
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({goal: {k: v for k, v in found.items() if k != "runs"} for goal, found in summary.items()
                      if isinstance(found, dict)}, indent=1))


if __name__ == "__main__":
    main()
