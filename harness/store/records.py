"""Versioned plain-JSON records, written atomically; corrupt or foreign files fail loudly.

A reader never repairs or overwrites a file it could not read.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

SCHEMA_VERSION = 1
RESULTS_KIND = "harness-results"


class RecordError(HarnessError):
    """A record file that cannot be used; the message names the file."""


def check_finite(value: object, where: str = "$") -> None:
    """JSON never holds NaN or infinity: reject them here, naming the key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r} at {where}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_finite(item, f"{where}[{index}]")


def dumps(data: dict) -> str:
    check_finite(data)
    return json.dumps(data, sort_keys=True, indent=1, allow_nan=False) + "\n"


def write_json_atomic(path: Path, data: dict) -> None:
    """Readers see the old file or the new one, never a torn one (write, fsync, rename)."""
    text = dumps(data)
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_record(path: Path, kind: str) -> dict:
    """Load a record of this kind and schema, or raise RecordError naming the file and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise RecordError(f"{path}: not a {kind} file (kind: {found!r})")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(f"{path}: schema_version missing or not an integer")
    if version > SCHEMA_VERSION:
        raise RecordError(f"{path}: schema_version {version} is newer than this harness reads ({SCHEMA_VERSION})")
    return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in records")


def new_results_path(results_dir: Path) -> Path:
    """A name no concurrent run can share: UTC time, process id and a random suffix."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(results_dir) / f"run-{stamp}-{os.getpid()}-{secrets.token_hex(3)}.json"


class ResultsFile:
    """One run's results; rewritten atomically after every case, so a crash loses nothing."""

    def __init__(self, path: Path, environment: dict, options: dict) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {
            "kind": RESULTS_KIND,
            "schema_version": SCHEMA_VERSION,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "environment": environment,
            "options": options,
            "cases": [],
        }

    def add(self, case_record: dict) -> None:
        self.data["cases"].append(case_record)
        write_json_atomic(self.path, self.data)


def load_results(path: Path) -> dict:
    data = read_record(path, RESULTS_KIND)
    if not isinstance(data.get("cases"), list):
        raise RecordError(f"{path}: 'cases' missing or not a list")
    return data
