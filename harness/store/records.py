"""Versioned plain-JSON records, written atomically; corrupt or foreign files fail loudly.

A reader never repairs or overwrites a file it could not read.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
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


TEMP_SUFFIX = ".tmp"


def _open_locked_temp(path: Path) -> tuple[int, Path]:
    """A new temporary file `.<name>.<pid>.<random>.tmp` beside the target (never a name a reader
    looks for), created with mode 0666 less the umask and locked. If a cleaner removed it before the
    lock was taken (remove_stale_temps), try another name."""
    for _ in range(8):
        temp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            return handle, temp  # no locks on this file system: remove_stale_temps cannot lock it either
        try:
            if os.path.samestat(os.fstat(handle), os.stat(temp)):
                return handle, temp
        except FileNotFoundError:
            pass
        os.close(handle)
    raise OSError(f"{path}: could not create a temporary file beside it")


def write_json_atomic(path: Path, data: dict) -> None:
    """A record as JSON (sorted keys, no NaN), written as write_text_atomic writes."""
    write_text_atomic(path, dumps(data))


def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a torn one: write, fsync, rename, fsync the
    folder. The file gets mode 0666 less the umask (0644 under the usual umask 022); its temporary
    copy stays locked until renamed, so remove_stale_temps can tell it from a killed writer's."""
    path = Path(path)
    handle, temp = _open_locked_temp(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", closefd=False) as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        os.close(handle)  # also releases the lock
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def remove_stale_temps(folder: Path, name: str = "") -> list[Path]:
    """Delete the temporary files killed writers left in `folder` (of the target `name`, or of any
    target) and return them. A writer holds its temporary file's lock until the rename, and the lock
    dies with its process: a file whose lock can be taken is litter, never a live writer's."""
    removed: list[Path] = []
    try:
        candidates = sorted(Path(folder).glob(f".{name or '*'}.*{TEMP_SUFFIX}"))
    except OSError:
        return removed
    for temp in candidates:
        try:
            handle = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # gone already, or not ours to read
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(handle), os.stat(temp)):
                temp.unlink()
                removed.append(temp)
        except OSError:
            continue  # a live writer holds it (or no locks here: keep it)
        finally:
            os.close(handle)
    return removed


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
        remove_stale_temps(self.path.parent, self.path.name)
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


# -- what a case record may hold (docs/records.md): checked before anything reads or writes it --------

# A case id or family becomes part of file names (baselines/<machine>/<family>.json, charts,
# traces, asv benchmark names): letters, digits and . _ + = - only, not starting with a dot.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]{0,199}")
TIME_KEYS = ("ttft_s", "tpot_s", "e2e_s", "calibration_s", "warmup_e2e_s", "first_call_s")  # seconds, > 0
LENGTH_KEYS = ("gen_lens", "prompt_lens")  # tokens per iteration, integers >= 1
TEXT_KEYS = ("id", "workload_id", "family", "stack", "status", "fingerprint", "message", "task", "preset", "dtype",
             "device")
OBJECT_KEYS = ("evidence", "stages_s", "generated_tokens", "params", "profile_wall_s", "breakdown", "peak_mem_parts")
CASE_KEYS = TEXT_KEYS + TIME_KEYS + LENGTH_KEYS + OBJECT_KEYS + ("peak_mem_bytes", "batch_size", "outputs_match")

# The keys each reader uses without a default; a case missing one is refused naming it.
COMPARE_KEYS = ("id", "status", "fingerprint")
BASELINE_KEYS = ("id", "family", "status", "fingerprint")
SHOW_KEYS = ("id", "workload_id", "family", "stack", "status", "message", "batch_size", "outputs_match", "evidence",
             "ttft_s", "tpot_s", "e2e_s", "gen_lens", "peak_mem_bytes")
LADDER_KEYS = ("id", "workload_id", "family", "task", "stack", "status", "e2e_s")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_samples(values: object) -> bool:
    """A list of finite numbers above zero: what every time sample and its statistics need."""
    return isinstance(values, list) and all(is_number(v) and v > 0 for v in values)


def check_name(value: object) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def case_problem(case: object, required: Iterable[str] = ()) -> tuple[str, str] | None:
    """(key, problem) for the first thing wrong with one case record, or None when it is usable."""
    from harness.families import FAMILIES  # the family table (imported here: it imports the spec)

    if not isinstance(case, dict):
        return "", f"must be an object, got {type(case).__name__}"
    for key in required:
        if key not in case:
            return key, "missing"
    for key in TEXT_KEYS:
        if key in case and not isinstance(case[key], str):
            return key, f"must be a string, got {type(case[key]).__name__}"
    if "id" in case and not check_name(case["id"]):
        return "id", f"{case['id']!r} is not a case name (letters, digits and . _ + = -; no path separators)"
    if "family" in case and case["family"] not in FAMILIES:
        return "family", f"unknown family {case['family']!r}; allowed: {', '.join(FAMILIES)}"
    for key in TIME_KEYS:
        if key in case and not positive_samples(case[key]):
            return key, "must be a list of positive finite numbers (seconds)"
    for key in LENGTH_KEYS:
        values = case.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            return key, "must be a list of positive integers"
    peak = case.get("peak_mem_bytes")
    if peak is not None and not (is_number(peak) and peak >= 0):
        return "peak_mem_bytes", "must be a non-negative number or null"
    batch = case.get("batch_size", 1)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        return "batch_size", "must be a positive integer"
    if case.get("outputs_match") not in (None, True, False):
        return "outputs_match", "must be true, false or null"
    for key in OBJECT_KEYS:
        if key in case and not isinstance(case[key], dict):
            return key, f"must be an object, got {type(case[key]).__name__}"
    for lever, found in case.get("evidence", {}).items():
        if not isinstance(found, dict):
            return f"evidence.{lever}", "must be an object"
    return profile_problem(case)


def profile_problem(case: dict) -> tuple[str, str] | None:
    """The profiled iteration's numbers, which the charts divide: per phase a number (or null)."""
    for key in ("profile_wall_s", "idle_frac"):
        value = case.get(key, {})
        if not isinstance(value, dict) or not all(v is None or is_number(v) for v in value.values()):
            return key, "must be an object of phase -> number or null"
    for phase, found in case.get("breakdown", {}).items():
        if not isinstance(found, dict) or not all(is_number(v) for v in found.values()):
            return f"breakdown.{phase}", "must be an object of category -> seconds"
    return None


def check_cases(path: Path, cases: Iterable[object], required: Iterable[str] = ()) -> None:
    """Refuse the file at its first unusable case: one line naming the file, the case and the key."""
    required = tuple(required)
    for index, case in enumerate(cases):
        found = case_problem(case, required)
        if found is None:
            continue
        key, problem = found
        name = case.get("id") if isinstance(case, dict) and check_name(case.get("id")) else None
        where = f"case {name!r} (cases[{index}])" if name else f"cases[{index}]"
        raise RecordError(f"{path}: {where}: {key + ' ' if key else ''}{problem}")


def load_results(path: Path, required: Iterable[str] = ()) -> dict:
    """A results file whose envelope and every case are usable: each documented key a case holds
    has its documented type (names from the family table, positive finite times), and each key in
    `required` is there. RecordError names the file, the case and the key."""
    data = read_record(path, RESULTS_KIND)
    if not isinstance(data.get("cases"), list):
        raise RecordError(f"{path}: 'cases' missing or not a list")
    for key in ("environment", "options"):
        if not isinstance(data.get(key, {}), dict):
            raise RecordError(f"{path}: {key} must be an object, got {type(data[key]).__name__}")
    environment: Mapping = data.get("environment", {})
    for key in ("gpu_count", "cpu_cores"):
        value = environment.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise RecordError(f"{path}: environment.{key} must be a non-negative integer, got {value!r}")
    check_cases(path, data["cases"], required)
    return data
