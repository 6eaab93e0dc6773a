"""Baseline store: baselines/<machine-class>/<family>.json, changed only on request.

Each case keeps its definition's fingerprint, the environment it was recorded in and the raw
samples of every gated metric. Updates merge cases under a lock, so concurrent updaters
never lose each other's cases; a file that cannot be read is never overwritten.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.analyse.attribution import PROFILE_FIELDS, profile_of
from harness.analyse.policy import METHOD_KEYS
from harness.store.machine import env_subset
from harness.store.records import (
    BASELINE_KEYS,
    SCHEMA_VERSION,
    RecordError,
    case_problem,
    check_name,
    is_number,
    positive_samples,
    read_record,
    remove_stale_temps,
    write_json_atomic,
)

BASELINE_KIND = "harness-baseline"
SAMPLE_KEYS = ("ttft_s", "tpot_s", "e2e_s", "gen_lens", "calibration_s")  # lists of numbers
VALUE_KEYS = ("peak_mem_bytes",)  # one number (or null) per run, kept with how it was measured (METHOD_KEYS)


def baseline_path(root: Path, machine: str, family: str) -> Path:
    """baselines/<machine>/<family>.json; both names are checked, so the path stays under `root`."""
    from harness.families import FAMILIES

    if not check_name(machine):
        raise RecordError(f"machine class {machine!r} is not a folder name (letters, digits and . _ + = -)")
    if family not in FAMILIES:
        raise RecordError(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
    return Path(root) / machine / f"{family}.json"


def case_entry(record: Mapping, environment: Mapping) -> dict:
    """What a baseline keeps of one measured case."""
    samples: dict[str, Any] = {key: list(record.get(key) or []) for key in SAMPLE_KEYS}
    samples.update({key: record.get(key) for key in VALUE_KEYS})
    samples.update({method: record.get(method, "") for method in METHOD_KEYS.values()})
    entry = {
        "fingerprint": record["fingerprint"],
        "environment": env_subset(environment),
        "samples": samples,
        "recorded_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    profile = profile_of(record)
    if profile:  # categories per phase, so a later regression can be attributed to them
        entry["profile"] = profile
    return entry


def _check_entry(path: Path, case_id: str, entry: object) -> None:
    def bad(problem: str) -> RecordError:
        return RecordError(f"{path}: case {case_id!r}: {problem}")

    if not isinstance(entry, dict):
        raise bad("not an object")
    if not isinstance(entry.get("fingerprint"), str):
        raise bad("fingerprint missing")
    if not isinstance(entry.get("environment"), dict):
        raise bad("environment block missing")
    samples = entry.get("samples")
    if not isinstance(samples, dict):
        raise bad("samples missing")
    for key in SAMPLE_KEYS:
        values = samples.get(key)
        if not positive_samples(values):
            raise bad(f"samples.{key} must be a list of positive finite numbers")
    for key in VALUE_KEYS:
        if samples.get(key) is not None and not (is_number(samples[key]) and samples[key] >= 0):
            raise bad(f"samples.{key} must be a non-negative number or null")
    for key in METHOD_KEYS.values():
        if not isinstance(samples.get(key, ""), str):
            raise bad(f"samples.{key} must be a string")
    profile = entry.get("profile", {})
    if not isinstance(profile, dict) or not all(isinstance(profile.get(k, {}), dict) for k in PROFILE_FIELDS):
        raise bad(f"profile must be an object of {', '.join(PROFILE_FIELDS)} objects")


def load_baseline(path: Path) -> dict:
    """A validated baseline file; RecordError names the file, the case and the problem."""
    data = read_record(path, BASELINE_KIND)
    cases = data.get("cases")
    if not isinstance(cases, dict):
        raise RecordError(f"{path}: 'cases' missing or not an object")
    for case_id, entry in cases.items():
        _check_entry(path, case_id, entry)
    return data


def load_baselines(root: Path, machine: str, families: Iterable[str]) -> dict[str, dict]:
    """case id -> entry for every family that has a baseline file for this machine class."""
    entries: dict[str, dict] = {}
    for family in families:
        path = baseline_path(root, machine, family)
        if path.exists():
            entries.update(load_baseline(path)["cases"])
    return entries


@contextmanager
def _locked(directory: Path):
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def update_baselines(root: Path, machine: str, records: Iterable[Mapping], environment: Mapping) -> list[tuple[Path, int, int]]:
    """Merge measured cases (status ok only) into their family files: (path, added, replaced).

    Every case is checked as load_baseline will check it, before any file is written: a case the
    loader would refuse (a missing key, a sample that is not a positive finite number, a family
    outside the family table) fails the whole update with RecordError, and nothing is written."""
    by_family: dict[str, dict[str, dict]] = {}
    for record in records:
        if record.get("status") != "ok" or not record.get("e2e_s"):
            continue
        found = case_problem(record, BASELINE_KEYS)
        if found is not None:
            key, problem = found
            raise RecordError(f"case {record.get('id')!r}: {key} {problem}; no baseline written")
        path = baseline_path(root, machine, record["family"])
        entry = case_entry(record, environment)
        try:
            _check_entry(path, record["id"], entry)
        except RecordError as exc:
            raise RecordError(f"{exc}; no baseline written") from None
        by_family.setdefault(record["family"], {})[record["id"]] = entry
    for family in by_family:  # an existing file that cannot be read stops the update before any write
        path = baseline_path(root, machine, family)
        if path.exists():
            load_baseline(path)
    changes = []
    for family, entries in sorted(by_family.items()):
        path = baseline_path(root, machine, family)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent):
            remove_stale_temps(path.parent, path.name)  # the lock keeps every other writer of it out
            data: dict[str, Any] = load_baseline(path) if path.exists() else {
                "kind": BASELINE_KIND, "machine_class": machine, "family": family, "cases": {},
            }
            data["schema_version"] = SCHEMA_VERSION
            replaced = sum(1 for case_id in entries if case_id in data["cases"])
            data["cases"].update(entries)
            write_json_atomic(path, data)
        changes.append((path, len(entries) - replaced, replaced))
    return changes
