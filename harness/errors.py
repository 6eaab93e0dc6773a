"""User-facing errors and the process exit statuses the harness documents."""

from __future__ import annotations

from collections.abc import Iterable

# pytest owns 0..5; the harness's own statuses start above them (README, "Exit statuses").
EXIT_HARNESS_ERROR = 6  # bad arguments, unreadable or foreign files


class HarnessError(Exception):
    """An error a user can fix; printed as one line, never as a traceback."""


def unknown_choice(kind: str, value: object, allowed: Iterable[str]) -> HarnessError:
    """One clear line naming the bad value and every allowed one."""
    choices = ", ".join(sorted(allowed))
    return HarnessError(f"unknown {kind} {value!r}; allowed: {choices}")
