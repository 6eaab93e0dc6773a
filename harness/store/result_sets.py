"""A results file or a folder of them, read as one set of cases; and the rule for output files
of commands that read them: an output is never one of the inputs, and replaces a file only when
told to."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.store.records import load_results


def result_files(path: str) -> list[Path]:
    """A results file, or every run-*.json in a folder (sorted: later files win per case)."""
    target = Path(path)
    files = sorted(target.glob("run-*.json")) if target.is_dir() else [target]
    if not files:
        raise HarnessError(f"{target}: no run-*.json results files in this folder")
    return files


def load_result_set(path: str, required: Iterable[str] = ()) -> tuple[list[dict], dict]:
    """Cases of a results file, or of every run-*.json in a folder (later files win per case); each
    file is checked whole (harness.store.records.load_results), `required` keys in every case."""
    cases: dict[str, dict] = {}
    environment: dict = {}
    for file in result_files(path):
        data = load_results(file, ("id", *required))
        environment = data.get("environment", {})
        cases.update((case["id"], case) for case in data["cases"])
    return list(cases.values()), environment


def check_output(path: Path, inputs: Iterable[Path], force: bool, flag: str) -> None:
    """An output file is never one of the inputs (not even with --force, nor through a link), and
    an existing one is replaced only with --force."""
    path = Path(path)
    if path.exists():
        if path.is_dir():
            raise HarnessError(f"{flag} {str(path)!r} is a folder; give a file name")
        for source in inputs:
            if source.exists() and os.path.samefile(path, source):
                raise HarnessError(f"{flag} {str(path)!r} is an input of this command ({source}); it is never overwritten")
        if not force:
            raise HarnessError(f"{flag} {str(path)!r} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise HarnessError(f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist")
