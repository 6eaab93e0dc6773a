"""The driver's end of a worker: a subprocess of one side's interpreter in that side's tree,
spoken to in JSON lines (harness/ab/worker.py). No torch here."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import IO, Any

from harness.errors import HarnessError

LOG_TAIL_LINES = 15


class WorkerError(HarnessError):
    """A worker died or broke the protocol; the message names the side and ends its log."""


class WorkerClient:
    def __init__(self, side: str, python: str, tree: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.side = side
        self.log_path = log_path
        self._log: IO[str] = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        environ = {**os.environ, **(env or {}), "PYTHONPATH": str(tree)}  # the side's own harness first
        try:
            self.process = subprocess.Popen(
                [python, "-m", "harness.ab.worker"], cwd=tree, env=environ, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            )
        except OSError as exc:
            self._log.close()
            raise HarnessError(f"{side}: cannot start {python!r}: {exc.strerror or exc}") from None

    def call(self, command: str, **arguments: Any) -> dict:
        """One request and its answer; a worker-side exception comes back as {"error": ...}."""
        if self.process.stdin is None or self.process.stdout is None:
            raise WorkerError(f"{self.side} worker has no pipes")
        try:
            self.process.stdin.write(json.dumps({"command": command, **arguments}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise WorkerError(f"{self.side} worker ended during {command!r}: {self.log_tail()}")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise WorkerError(f"{self.side} worker answered {command!r} with a line that is not JSON: {line[:200]!r}") from None

    def checked(self, command: str, **arguments: Any) -> dict:
        """call(), where an error answer stops the A/B (hello, plan: nothing can be compared without them)."""
        answer = self.call(command, **arguments)
        if "error" in answer:
            raise WorkerError(f"{self.side} worker failed {command!r}: {answer['error']}")
        return answer

    def log_tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = [line for line in lines if line.strip()][-LOG_TAIL_LINES:]
        return f"last log lines ({self.log_path}): " + " | ".join(tail) if tail else f"log {self.log_path} is empty"

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call_quit()
                self.process.wait(timeout=30)
            except (subprocess.TimeoutExpired, OSError, ValueError):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self._log.close()

    def call_quit(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.write(json.dumps({"command": "quit"}) + "\n")
            self.process.stdin.close()
