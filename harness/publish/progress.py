"""Progress of a benchmark run: one live bar on a terminal, one line per case in a log.

A terminal gets a single line redrawn in place (cases done of total, the current case and phase,
elapsed time and an estimate of what is left); a pipe or a CI log, which cannot redraw, gets one
line per finished case instead of a line per phase. The texts are pure functions of the state; the
`ProgressDisplay` only decides where they go, through the two writers the caller hands it (the
pytest plugin: its terminal reporter), so this module knows nothing of pytest.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from harness.analyse.stats import median
from harness.publish.units import MS_PER_S

BAR_WIDTH = 24  # characters of the live bar; the rest of the line is the text
CLEAR_LINE = "\r\x1b[2K"  # carriage return, then erase the whole line: the redraw of a live line


def clock_text(seconds: float) -> str:
    """'4:07' or '1:02:03': a duration as a person reads a clock."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def left_s(done: int, total: int, elapsed_s: float) -> float | None:
    """What is left at the pace so far (elapsed per case done); None before the first case.
    Cases differ a lot in cost (a 1024-token image case against a 32-token one), so this is an
    estimate, and the texts say 'about'."""
    if done <= 0 or total <= done:
        return None if done <= 0 else 0.0
    return elapsed_s / done * (total - done)


def timing_text(done: int, total: int, elapsed_s: float) -> str:
    left = left_s(done, total, elapsed_s)
    ahead = "" if left is None else f", about {clock_text(left)} left"
    return f"{clock_text(elapsed_s)} elapsed{ahead}"


def outcome_text(record: Mapping) -> str:
    """A finished case in a few words: 'ok, e2e p50 12.3 ms' or its status and why."""
    status = record.get("status", "?")
    if status != "ok":
        message = str(record.get("message") or "").splitlines()
        return f"{status.upper()}: {message[0][:100]}" if message else status.upper()
    e2e = record.get("e2e_s") or []
    return f"ok, e2e p50 {median(e2e) * MS_PER_S:.1f} ms" if e2e else "ok"


def case_line(index: int, total: int, record: Mapping, elapsed_s: float, finished: int | None = None) -> str:
    """The one line a log gets per finished case; `finished`: the cases measured so far, for the pace
    (a workload's cases are all measured when its first is asked for, then handed out one by one)."""
    pace = timing_text(max(index, finished or 0), total, elapsed_s)
    return f"[{index}/{total}] {record.get('id', '?')}: {outcome_text(record)} ({pace})"


def live_text(done: int, total: int, current: str, elapsed_s: float, width: int, color: bool) -> str:
    """The live bar as one terminal line of at most `width - 1` columns (ANSI-styled when `color`):
    the bar, cases done of total, the clock, then the current case and phase, cut to fit."""
    filled = round(BAR_WIDTH * done / total) if total > 0 else 0
    line = Text.assemble(
        ("━" * filled, "green"), ("━" * (BAR_WIDTH - filled) if color else "─" * (BAR_WIDTH - filled), "grey37"),
        f" {done}/{total} · {timing_text(done, total, elapsed_s)} · ", (current, "cyan"),
    )
    line.truncate(max(width - 1, 40), overflow="ellipsis")
    console = Console(width=max(width, 41), file=io.StringIO(), force_terminal=color, record=True,
                      color_system="standard" if color else None)
    console.print(line, end="", no_wrap=True, soft_wrap=True)
    return console.export_text(styles=color).split("\n")[0]


@dataclass
class ProgressDisplay:
    """Where progress goes. `write_raw` writes to the terminal behind the back of whoever else
    writes there (the caller's own idea of the cursor's column stays as it was: a log line ends
    with its newline, a live line is cleared before anyone else writes); `new_line` starts a fresh
    line if that writer's cursor is not at the start of one. `live`: redraw one line in place (a
    terminal) rather than print one line per case (a log)."""

    total: int
    write_raw: Callable[[str], None]
    new_line: Callable[[], None]
    live: bool = False
    width: int = 120
    color: bool = False
    clock: Callable[[], float] = time.monotonic
    started_s: float = field(default=-1.0)
    done: int = 0
    finished: int = 0  # measured so far: done, plus the rest of the workload being handed out
    current: str = ""
    drawn: bool = False

    def start(self, total: int) -> None:
        """The run's cases are known: the clock starts (the first case's build and compile count)."""
        self.total, self.done, self.finished, self.started_s = total, 0, 0, self.clock()

    def elapsed_s(self) -> float:
        if self.started_s < 0:
            self.started_s = self.clock()
        return self.clock() - self.started_s

    def phase(self, message: str) -> None:
        """A case's current phase: redrawn on a terminal, silent in a log (one line per case there)."""
        self.current = message
        if self.live:
            self._draw()

    def case_done(self, record: Mapping, finished: int | None = None) -> None:
        """A case handed out; `finished`: how many cases are measured by now (its workload's others too)."""
        self.done += 1
        self.finished = max(self.done, finished or 0)
        if self.live:
            self.current = f"{record.get('id', '?')}: {outcome_text(record)}"
            self._draw()
            return
        self.new_line()
        self.write_raw(case_line(self.done, self.total, record, self.elapsed_s(), self.finished) + "\n")

    def clear(self) -> None:
        """Take the live line off the screen, so that whatever else writes starts on an empty line."""
        if self.drawn:
            self.write_raw(CLEAR_LINE)
            self.drawn = False

    def _draw(self) -> None:
        if not self.drawn:
            self.new_line()
        text = live_text(max(self.done, self.finished), self.total, self.current, self.elapsed_s(), self.width, self.color)
        self.write_raw(CLEAR_LINE + text)
        self.drawn = True
