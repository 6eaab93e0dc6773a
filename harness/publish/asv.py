"""Recorded results -> asv results files, so that `asv publish` builds the HTML history.

Each gated metric of each case becomes one asv benchmark `<family>.<case id>.<metric>`. Its
result row keeps the raw samples (asv's `track_` benchmarks keep one number and drop them) and
the confidence statistics asv itself computes from samples (`asv_runner.statistics.
compute_stats`: median, 99% CI of the median, quartiles), so `asv compare` runs its
Mann-Whitney test on the samples and `asv publish` weights its step detection by the CI.

Formats (read from asv 0.6's source): results file version 2 (asv/results.py `Results.save`),
machine.json version 1 (asv/machine.py), benchmarks.json version 2 (asv/benchmarks.py). asv
resolves a result's commit in the repository named by asv.conf.json (`repo`), orders commits by
`git rev-list` and graphs only those on the configured `branches`; the results' date is the
commit's author date in milliseconds, as asv's git plugin computes it. Running asv on them
(`asv publish`, `asv preview`) is harness/publish/asv_run.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.publish.asv_run import AsvConfig, commit_date_ms
from harness.publish.asv_series import Series, case_series
from harness.store.machine import machine_class
from harness.store.records import load_results, write_json_atomic

PUBLISH_KEYS = ("id", "family", "status", "fingerprint")  # what a published case must hold
COMMIT_HASH = re.compile(r"[0-9a-f]{7,64}")

RESULTS_API_VERSION = 2  # asv.results.Results.api_version
MACHINE_API_VERSION = 1  # asv.machine.Machine.api_version
BENCHMARKS_API_VERSION = 2  # asv.benchmarks.Benchmarks.api_version
BENCHMARKS_FILE = "benchmarks.json"

# Column order of a version-2 results row (asv/results.py, Results.save: all_keys).
RESULT_COLUMNS = (
    "result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
    "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile",
)

# asv machine.json key -> environment field (values are strings, as asv writes them).
MACHINE_FIELDS = {
    "os": "platform",
    "cpu": "cpu_model",
    "num_cpu": "cpu_cores",
    "gpu": "device_name",
    "gpu_count": "gpu_count",
    "gpu_memory_bytes": "gpu_memory_bytes",
    "cuda": "cuda_version",
    "driver": "driver_version",
}
REQUIREMENTS = ("torch", "transformers")  # asv keeps requirements as params: a change starts a new series


@dataclass
class CommitResults:
    """All cases measured on one machine class at one commit in one environment."""

    machine: str
    commit: str
    environment: dict
    cases: dict = field(default_factory=dict)  # case id -> record; a later file wins
    started_ms: int = 0
    date_ms: int | None = None  # the commit's author date (commit_date_ms), when already looked up


@dataclass(frozen=True)
class Skipped:
    """A results file left out of the history, and why (one line naming the file)."""

    path: Path
    reason: str


def benchmark_name(record: Mapping, metric: str) -> str:
    """asv groups benchmarks by dotted prefix: family, then case, then metric."""
    case = re.sub(r"[^A-Za-z0-9_+\-]", "_", record["id"])
    return f"{record['family']}.{case}.{metric}"


def env_name(environment: Mapping) -> str:
    parts = [f"py{environment.get('python', '')}"] + [f"{name}{environment.get(name, '')}" for name in REQUIREMENTS]
    return re.sub(r"[^A-Za-z0-9_.+\-]", "_", "harness-" + "-".join(parts))


def machine_info(name: str, environment: Mapping) -> dict:
    """asv's machine.json entry; GPU fields and a one-line description for the machine page."""
    info = {"machine": name, "version": MACHINE_API_VERSION}
    for key, source in MACHINE_FIELDS.items():
        if environment.get(source) is not None:
            info[key] = str(environment[source])
    if environment.get("gpu_count"):
        gpu = f"{environment['gpu_count']}x {environment.get('device_name')}"
        info["description"] = f"{gpu}, CUDA {environment.get('cuda_version')}, driver {environment.get('driver_version')}"
    else:
        info["description"] = f"CPU only: {environment.get('cpu_model')}, {environment.get('cpu_cores')} cores"
    return info


def result_params(machine: str, environment: Mapping) -> dict:
    info = machine_info(machine, environment)
    params = {key: value for key, value in info.items() if key not in ("version", "description")}
    params["python"] = str(environment.get("python", ""))
    params.update({name: str(environment.get(name, "")) for name in REQUIREMENTS})
    return params


def benchmark_entry(record: Mapping, series: Series) -> dict:
    """benchmarks.json entry. version = the case fingerprint: asv drops results whose version
    differs, so a changed case definition never shares a graph with the old one."""
    name = benchmark_name(record, series.metric)
    described = {key: record.get(key) for key in ("family", "task", "preset", "stack", "dtype", "batch_size",
                                                  "prompt_len", "gen_len", "length_dist")}
    how = "" if series.gated else " (breakdown: recorded, not gated)"
    return {
        "name": name,
        "pretty_name": f"{record['id']} {series.metric}",
        "type": series.kind,
        "unit": series.unit,
        "params": [],
        "param_names": [],
        "version": record["fingerprint"],
        "code": f"harness case (measured by `pytest suites/ --benchmark`){how}\n" + json.dumps(described, indent=1),
        "timeout": 0,
    }


def result_row(record: Mapping, series: Series, started_ms: int) -> list | None:
    """One version-2 results row, or None when the case has no samples for this series."""
    from asv_runner.statistics import compute_stats  # the statistics asv computes, exactly

    samples = series.samples
    if not samples:
        return None
    if len(samples) > 1:
        value, stats = compute_stats(samples, 1)  # number=1: each sample is one generation
    else:
        # One value per run (peak memory, the profiled iteration's breakdown): no interval to state.
        value, stats = samples[0], None
    columns = {
        "result": [value],
        "params": [],
        "version": record["fingerprint"],
        "started_at": started_ms,
        "duration": None,
        "samples": [samples],
        "profile": None,
    }
    for key in ("ci_99_a", "ci_99_b", "q_25", "q_75", "number", "repeat"):
        columns[f"stats_{key}"] = [stats.get(key) if stats else None]
    row = [columns[name] for name in RESULT_COLUMNS]
    while row and row[-1] is None:  # asv trims trailing empty columns the same way
        row.pop()
    return row


def results_document(group: CommitResults, commit_date_ms: int) -> tuple[dict, dict]:
    """(asv results file, benchmarks.json entries) for one machine, commit and environment."""
    rows, benchmarks = {}, {}
    for record in group.cases.values():
        for series in case_series(record):
            row = result_row(record, series, group.started_ms)
            if row is not None:
                name = benchmark_name(record, series.metric)
                rows[name] = row
                benchmarks[name] = benchmark_entry(record, series)
    document = {
        "commit_hash": group.commit,
        "env_name": env_name(group.environment),
        "date": commit_date_ms,
        "params": result_params(group.machine, group.environment),
        "python": str(group.environment.get("python", "")),
        "requirements": {name: str(group.environment.get(name, "")) for name in REQUIREMENTS},
        "env_vars": {},
        "result_columns": list(RESULT_COLUMNS),
        "results": rows,
        "durations": {},
        "version": RESULTS_API_VERSION,
    }
    return document, benchmarks


def group_results(
    paths: Iterable[Path], allow_dirty: bool = False, repo: Path | None = None
) -> tuple[list[CommitResults], list[str], list[Skipped]]:
    """Group recorded cases by (machine class, commit, environment); notes list the cases left out.

    A file that cannot be published is skipped, never the whole history: one that does not load
    (unreadable, corrupt, a bad case), has no usable git_commit, was recorded from a dirty tree
    (unless allow_dirty), or, given `repo`, measured a commit that is not in it."""
    groups: dict[tuple, CommitResults] = {}
    notes: list[str] = []
    skipped: list[Skipped] = []
    dates: dict[str, int] = {}
    for path in results_files(paths):
        try:
            data = load_results(path, PUBLISH_KEYS)
            environment = data.get("environment") or {}
            commit = _publishable_commit(path, environment, allow_dirty)
            if repo is not None and commit not in dates:
                dates[commit] = commit_date_ms(repo, commit)
        except HarnessError as exc:
            skipped.append(Skipped(path, str(exc) if str(path) in str(exc) else f"{path}: {exc}"))
            continue
        machine = machine_class(environment)
        key = (machine, commit, env_name(environment))
        group = groups.setdefault(key, CommitResults(machine, commit, environment, date_ms=dates.get(commit)))
        group.started_ms = max(group.started_ms, _created_ms(data))
        for record in data["cases"]:
            if record.get("status") == "ok":
                group.cases[record["id"]] = record
            else:
                notes.append(f"{path.name}: {record['id']} not published (status {record.get('status')})")
    return list(groups.values()), notes, skipped


def _publishable_commit(path: Path, environment: Mapping, allow_dirty: bool) -> str:
    commit = environment.get("git_commit")
    if not commit:
        raise HarnessError(f"{path}: no git_commit in its environment: asv needs the commit it measured")
    if not isinstance(commit, str) or not COMMIT_HASH.fullmatch(commit):
        raise HarnessError(f"{path}: environment.git_commit {commit!r} is not a commit hash")
    if environment.get("git_dirty") and not allow_dirty:
        raise HarnessError(f"{path}: recorded from a tree with uncommitted changes to {commit[:12]} "
                           "(its numbers are not that commit's); pass --allow-dirty to publish it anyway")
    return commit


def results_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        found = sorted(path.rglob("run-*.json")) if path.is_dir() else [path]
        if not found:
            raise HarnessError(f"{path}: no run-*.json results files in this folder")
        files += found
    return sorted(files, key=lambda p: p.name)  # names start with the UTC time: later runs win


def _created_ms(data: Mapping) -> int:
    import calendar
    import time

    created = data.get("created_utc")
    if not created:
        return 0
    return calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def write_asv_results(config: AsvConfig, groups: list[CommitResults]) -> list[Path]:
    """Write machine.json, one results file per group and the merged benchmarks.json."""
    config.results_dir.mkdir(parents=True, exist_ok=True)
    benchmarks_path = config.results_dir / BENCHMARKS_FILE
    benchmarks = _existing_benchmarks(benchmarks_path)
    written = []
    for group in groups:
        folder = config.results_dir / group.machine
        folder.mkdir(exist_ok=True)
        write_json_atomic(folder / "machine.json", machine_info(group.machine, group.environment))
        date_ms = group.date_ms if group.date_ms is not None else commit_date_ms(config.repo, group.commit)
        document, entries = results_document(group, date_ms)
        benchmarks.update(entries)
        target = folder / f"{group.commit[:8]}-{document['env_name']}.json"  # asv.results.get_filename
        write_json_atomic(target, document)
        written.append(target)
    write_json_atomic(benchmarks_path, {**benchmarks, "version": BENCHMARKS_API_VERSION})
    return written


def _existing_benchmarks(path: Path) -> dict:
    """Benchmarks of earlier publishes stay listed, so their history stays on the pages."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path}: unreadable ({exc}); delete it to rebuild from the results") from None
    data.pop("version", None)
    return data
