"""What every smoke check is and returns: a name, where it can run, and a pass/fail with figures."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Found:
    """A check's outcome: passed or not, its measured figures, and one line saying why."""

    passed: bool
    detail: str
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SmokeContext:
    """What the checks share: the device they run on, its dtype, and a folder for their files."""

    device: str
    dtype: str
    work_dir: Path
    seed: int = 0
    deadline_s: float = math.inf  # time.perf_counter() at which the run's budget is spent

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def remaining_s(self) -> float:
        return self.deadline_s - time.perf_counter()


@dataclass(frozen=True)
class Check:
    """One named check. `cpu` says whether a dry run (--device cpu) runs it too; CUDA-only checks
    are skipped there, with that reason."""

    name: str
    proves: str  # what passing shows, for the table and docs/smoke.md
    run: Callable[[SmokeContext], Found]
    cpu: bool = False


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str  # pass | fail | skip
    detail: str
    figures: dict
    seconds: float

    def to_record(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "figures": self.figures,
                "seconds": self.seconds}


def judge(check: Check, ctx: SmokeContext) -> Verdict:
    """Run one check; an exception is that check's failure (its type and message), not the run's."""
    if not ctx.on_cuda and not check.cpu:
        return Verdict(check.name, "skip", "CUDA only: not run on the CPU", {}, 0.0)
    if ctx.remaining_s() <= 0:  # a run that did not check everything must not pass
        return Verdict(check.name, "fail", "not run: the smoke run's time budget was spent", {}, 0.0)
    start = time.perf_counter()
    try:
        found = check.run(ctx)
    except Exception as exc:  # noqa: BLE001 - one failing path must not hide the others' verdicts
        found = Found(False, f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    status = "pass" if found.passed else "fail"
    return Verdict(check.name, status, found.detail, found.figures, round(time.perf_counter() - start, 3))
