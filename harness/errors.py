"""User-facing errors and the process exit statuses the harness documents."""

from __future__ import annotations

from collections.abc import Iterable

# pytest owns 0..6 (6: max warnings in pytest 9); the harness's statuses stay clear of them
# (docs/gating.md, "Exit statuses").
EXIT_HARNESS_ERROR = 10  # bad arguments, unreadable, corrupt or foreign files
EXIT_REGRESSION = 11  # a gated metric regressed against the baseline (tests themselves passed)
EXIT_UNJUDGED = 12  # no regression, but some case or metric could not be judged (fails closed)


class HarnessError(Exception):
    """An error a user can fix; printed as one line, never as a traceback."""


def unknown_choice(kind: str, value: object, allowed: Iterable[str]) -> HarnessError:
    """One clear line naming the bad value and every allowed one."""
    choices = ", ".join(sorted(allowed))
    return HarnessError(f"unknown {kind} {value!r}; allowed: {choices}")
