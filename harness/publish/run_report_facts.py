"""The run report's header: which results file, when and where it was recorded (the environment
block and the main options of the results file), and how many cases were measured, failed or
contended. Every value comes from the file and is escaped: the file may not be the harness's own."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence

from harness.store.machine import machine_class

# (label, environment key), in the order they are listed; a key the file lacks is left out.
ENVIRONMENT = (
    ("device", "device"), ("device name", "device_name"), ("GPUs", "gpu_count"), ("GPU memory", "gpu_memory_bytes"),
    ("CUDA", "cuda_version"), ("driver", "driver_version"), ("CPU", "cpu_model"), ("CPU cores", "cpu_cores"),
    ("CPUs usable", "cpu_affinity"), ("torch threads", "torch_threads"), ("python", "python"), ("torch", "torch"),
    ("transformers", "transformers"), ("torchao", "torchao"), ("platform", "platform"),
)
OPTIONS = (
    ("preset", "preset"), ("dtypes", "dtypes"), ("families", "families"), ("stacks", "stacks"),
    ("iterations", "iterations"), ("warm-up", "warmup"), ("rounds", "rounds"), ("contention ratio", "contention_ratio"),
    ("allow unjudged", "allow_unjudged"),
)
GIB = 2**30


def value_text(key: str, value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if key.endswith("_bytes") and isinstance(value, int) and not isinstance(value, bool):
        return f"{value / GIB:.1f} GiB"
    return str(value)


def listed(pairs: Sequence[tuple[str, str]], found: Mapping) -> list[tuple[str, str]]:
    """(label, text) of each key `found` has with a value ("" and null say nothing)."""
    return [(label, value_text(key, found[key])) for label, key in pairs if found.get(key) not in (None, "", [])]


def commit_text(environment: Mapping) -> str:
    commit = environment.get("git_commit")
    if not isinstance(commit, str) or not commit:
        return "unknown"
    return commit[:12] + (" (uncommitted changes)" if environment.get("git_dirty") else "")


def status_counts(records: Sequence[Mapping]) -> str:
    """'5 case(s): 3 measured (ok), 1 failed (mismatch 1), 1 contended'."""
    found = Counter(str(record.get("status")) for record in records)
    failed = {status: count for status, count in found.items() if status not in ("ok", "contended")}
    detail = f" ({', '.join(f'{status} {count}' for status, count in failed.items())})" if failed else ""
    return (f"{len(records)} case(s): {found['ok']} measured (ok), {sum(failed.values())} failed{detail}, "
            f"{found['contended']} contended")


def facts_html(source: str, data: Mapping, records: Sequence[Mapping]) -> str:
    environment = data.get("environment") or {}
    options = data.get("options") or {}
    facts = [("results file", source), ("recorded", str(data.get("created_utc") or "unknown")),
             ("commit", commit_text(environment)), ("machine class", machine_class(environment)),
             *listed(ENVIRONMENT, environment), *listed(OPTIONS, options), ("cases", status_counts(records))]
    items = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(text)}</dd>" for label, text in facts)
    return f'<dl class="facts">{items}</dl>'
