"""One side's warm worker: `python -m harness.ab.worker`, run by the A/B driver in that side's
tree and interpreter, so every measurement runs that side's own code.

It reads one JSON request per line on stdin and answers one JSON line on the stdout it was given;
anything else that writes to stdout (a library's print) is sent to stderr, the driver's log.
Requests: hello, plan, prepare, chunk, probe, profile, release, quit (harness/ab/protocol.py).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

PROTOCOL = 1
TIME_METRICS = ("ttft_s", "tpot_s", "e2e_s")


def _value(raw: Any) -> float:
    """One iteration's value of a metric: a list (per-token TPOT) gives its median."""
    from harness.analyse.stats import median

    return median(raw) if isinstance(raw, list) else float(raw)


class Worker:
    def __init__(self) -> None:
        self.ctx: Any = None
        self.cases: dict[str, Any] = {}  # case id -> Case of the plan
        self.runs: dict[str, Any] = {}  # case id -> warm CaseRun of the current workload

    def hello(self) -> dict:
        import torch
        import transformers

        import harness
        from harness.measure.env import thread_settings

        return {"protocol": PROTOCOL, "harness_file": harness.__file__, "python": sys.version.split()[0],
                "torch": torch.__version__, "transformers": transformers.__version__, "threads": thread_settings()}

    def plan(self, options: dict, keyword: str) -> dict:
        import torch

        from harness.measure.case import RunContext
        from harness.measure.env import apply_threads
        from harness.options import RunOptions
        from harness.spec.selection import select

        selection = select(RunOptions(**options), torch.cuda.is_available())
        apply_threads(selection.options.threads)
        self.ctx = RunContext(selection.options, selection.device)
        cases, dropped = selection.expand_all()
        words = [word for word in keyword.split("|") if word]
        self.cases = {case.id: case for case in cases if not words or any(word in case.id for word in words)}
        listed = [{"id": case.id, "workload_id": case.workload_id, "family": case.family} for case in self.cases.values()]
        return {"device": selection.device, "cases": listed, "dropped": {cell.case_id: cell.reason for cell in dropped}}

    def prepare(self, case_ids: list[str], folder: str, role: str) -> dict:
        """Build, check and warm up a workload's cases (their sessions stay warm side by side);
        each one's output on its first draw is then saved (BASE) or compared with BASE's (HEAD)."""
        from harness.levers import LEVERS

        self.runs.clear()
        LEVERS.reset_state(self.cases[case_id].stack for case_id in case_ids)
        answers: dict[str, dict] = {}
        for case_id in case_ids:
            try:
                answers[case_id] = self._prepare_one(case_id, Path(folder) / f"{len(answers)}.pt", role)
            except Exception as exc:
                self.runs.pop(case_id, None)
                answers[case_id] = {"status": "error", "message": f"{type(exc).__name__}: {exc}",
                                    "traceback": traceback.format_exc(limit=8)}
        return answers

    def _prepare_one(self, case_id: str, output_file: Path, role: str) -> dict:
        import torch

        from harness.measure.case import CaseRun

        run = CaseRun(self.cases[case_id], self.ctx)
        if not run.check(run.draws[0]):
            return {"status": run.result.status, "message": run.result.message}
        run.warmup()
        value = run._run(run.draws[0]).value
        answer = {"status": "ok", "message": "", "draws": len(run.draws), "warmup_probe_s": run.warmup_probe()}
        if role == "base":
            torch.save(value, output_file)
        else:  # our own temporary folder, written by BASE's worker: a trusted pickle
            mismatch = run.runner.compare(torch.load(output_file, weights_only=False), value)
            if mismatch is not None:
                answer.update(status="mismatch", message=f"HEAD's output differs from BASE's: {mismatch.describe()}")
        if answer["status"] == "ok":
            self.runs[case_id] = run
        return answer

    def chunk(self, case_id: str, iterations: list[int], probe_before: bool = True, probe_after: bool = True) -> dict:
        """Timed iterations of a warm case, with a machine-speed probe before and after them where asked."""
        from harness.measure.calibration import probe_s

        run = self.runs[case_id]
        before = probe_s(1) if probe_before else []
        outputs = run.timed_chunk(iterations)
        after = probe_s(1) if probe_after else []
        values = [{m: _value(out.metrics[m]) for m in TIME_METRICS if out.metrics.get(m) not in (None, [])}
                  for _, out in outputs]
        return {"probes_s": before + after, "iterations": values}

    def probe(self, count: int) -> dict:
        from harness.measure.calibration import probe_s

        return {"probes_s": probe_s(count)}

    def profile(self, case_id: str) -> dict:
        from harness.analyse.attribution import PROFILE_FIELDS

        run = self.runs[case_id]
        run.profile(max(run.draws, key=sum))
        return {name: run.result.profile.get(name) for name in PROFILE_FIELDS}

    def release(self) -> dict:
        self.runs.clear()
        return {}


def serve(requests: TextIO, replies: TextIO) -> None:
    import json

    worker = Worker()
    for line in requests:
        request = json.loads(line)
        command = request.pop("command")
        if command == "quit":
            return
        try:
            answer = getattr(worker, command)(**request)
        except Exception as exc:  # the driver records the case as an error and goes on
            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
        replies.write(json.dumps(answer) + "\n")
        replies.flush()


def main() -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # prints of libraries go to the log, never into the reply stream
    sys.stdout = sys.stderr
    os.chdir(Path(__file__).resolve().parents[2])  # the side's tree: its data files and git state
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
