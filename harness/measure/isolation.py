"""--isolate: each workload measured in a child process of its own (quick checks: each case), as
asv runs each benchmark, so that a native crash (a segfault, the OOM killer, a CUDA error that
poisons the context) costs one case, not the rest of the run.

The child (harness.measure.isolated_worker) measures exactly what the run in-process would: the
workload's stacks still in interleaved rounds. It says which case's work is under way and sends
each finished case's record as a JSON line. When it dies, the case whose work was under way is
recorded `crashed`, with the signal or exit status and the end of the child's stderr, and the
workload's other unfinished cases are measured again in a fresh child. docs/isolation.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import harness
from harness.errors import HarnessError
from harness.measure.case import RunContext, case_fingerprint
from harness.measure.record import CaseResult
from harness.spec.matrix import Case

CRASHED = "crashed"
STDERR_TAIL_LINES = 30  # of the child's stderr, kept in a crashed case's traceback (faulthandler's stack is there)
WORKER = "harness.measure.isolated_worker"


@dataclass
class RecordedResult:
    """A case's result as its child process recorded it (the plugin reads status, message, the record)."""

    record: dict

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def message(self) -> str:
        return self.record["message"]

    def to_record(self) -> dict:
        return self.record


@dataclass
class ChildEnd:
    """What one child process left: the records it sent, the case under way, how it ended."""

    records: dict[str, dict] = field(default_factory=dict)
    current: str = ""
    returncode: int = 0
    stderr_tail: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)  # the run context the child hands back (peaks, quiet probe)

    def how(self) -> str:
        if self.returncode < 0:
            return f"killed by {signal.Signals(-self.returncode).name}"
        return f"exited with status {self.returncode} before sending its record"


def measure_isolated(cases: Sequence[Case], ctx: RunContext, measure: bool) -> dict[str, RecordedResult]:
    """Every case's result, by id: measured in child processes, a crashed case recorded as such."""
    results: dict[str, RecordedResult] = {}
    left = list(cases)
    while left:
        end = run_child(left, ctx, measure)
        ctx.peaks.update(end.context.get("peaks", {}))
        if (quiet := end.context.get("quiet_probe_s")) is not None:
            ctx.quiet_probe_s = quiet
        results.update({case_id: RecordedResult(record) for case_id, record in end.records.items()})
        left = [case for case in left if case.id not in results]
        if not left:
            break
        # A child that died before any case's work began (starting up) would die again: every case left is charged.
        victims = [case for case in left if case.id == end.current] or left
        for victim in victims:
            results[victim.id] = RecordedResult(crashed_record(victim, ctx, end))
            ctx.progress(f"{victim.id}: crashed ({end.how()}); the run goes on")
        left = [case for case in left if case.id not in results]
    return results


def crashed_record(case: Case, ctx: RunContext, end: ChildEnd) -> dict:
    result = CaseResult(case, case_fingerprint(case, ctx.options), ctx.device, status=CRASHED)
    result.message = f"the child process measuring it (--isolate) {end.how()}"
    result.traceback = "".join(end.stderr_tail)
    return result.to_record()


def child_command() -> tuple[list[str], dict[str, str]]:
    """The worker's command line and environment: this interpreter, and this harness package first on its path."""
    package_root = str(Path(harness.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH", ""))))
    return [sys.executable, "-X", "faulthandler", "-m", WORKER], env


def run_child(cases: Sequence[Case], ctx: RunContext, measure: bool) -> ChildEnd:
    """One child over `cases`: its progress relayed, its records collected, until it ends."""
    command, env = child_command()
    request = {"options": asdict(ctx.options), "cases": [case.id for case in cases], "measure": measure,
               "peaks": ctx.peaks, "quiet_probe_s": ctx.quiet_probe_s}
    end = ChildEnd()
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    with subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, encoding="utf-8", errors="replace") as child:  # its pipes closed on the way out
        relay = threading.Thread(target=_relay_stderr, args=(child.stderr, tail), daemon=True)
        relay.start()
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(json.dumps(request) + "\n")
            child.stdin.close()
            for line in child.stdout:
                _take(json.loads(line), end, ctx.progress)
        except BaseException:
            child.kill()  # interrupted (Ctrl-C, a bad reply): no orphan left measuring
            raise
        finally:
            end.returncode = child.wait()
            relay.join(timeout=5)
    end.stderr_tail = list(tail)
    if end.returncode == 0 and not end.context:
        raise HarnessError(f"the --isolate child exited without finishing; its stderr ended: {''.join(tail)[-500:]}")
    return end


def _take(message: dict, end: ChildEnd, progress: Callable[[str], None]) -> None:
    """One line of the child's: a progress line, the case under way, a case's record, or its last word."""
    if "progress" in message:
        progress(message["progress"])
    elif "case" in message:
        end.current = message["case"]
    elif "record" in message:
        end.records[message["record"]["id"]] = message["record"]
    elif "done" in message:
        end.context = message["done"]


def _relay_stderr(stream, tail: deque[str]) -> None:
    """The child's stderr onto ours as it comes (pytest shows it with a failure), its end kept."""
    for line in stream:
        sys.stderr.write(line)
        tail.append(line)
