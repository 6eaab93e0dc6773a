"""User-facing errors and the process exit statuses the harness documents."""

from __future__ import annotations

from collections.abc import Iterable

# pytest owns 0..6 (6: max warnings in pytest 9); the harness's statuses stay clear of them
# (docs/gating.md, "Exit statuses").
EXIT_HARNESS_ERROR = 10  # bad arguments, unreadable, corrupt or foreign files
EXIT_REGRESSION = 11  # a gated metric regressed against the baseline (tests themselves passed)
# Nothing regressed, but a case or metric could not be judged (no baseline, missing from the run,
# noisy, contended, another environment) and --allow-unjudged does not accept it; in `harness ab`,
# a case inconclusive, contended or on one side only. The gate fails closed, since "nothing
# regressed" would otherwise also be what a gate that judged nothing says.
EXIT_UNJUDGED = 12
# 13: `harness publish` with skipped files (harness.publish.asv_run.EXIT_PUBLISHED_WITH_SKIPS).
EXIT_SMOKE_FAILED = 14  # `harness smoke`: a check failed (its verdict file says which, and why)


class HarnessError(Exception):
    """An error a user can fix; printed as one line, never as a traceback."""


def unknown_choice(kind: str, value: object, allowed: Iterable[str]) -> HarnessError:
    """One clear line naming the bad value and every allowed one."""
    choices = ", ".join(sorted(allowed))
    return HarnessError(f"unknown {kind} {value!r}; allowed: {choices}")
