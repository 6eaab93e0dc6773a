"""Machine class: which baselines a machine may be compared with (GPU model and count, or CPU
model and cores), derived from the environment block."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Fields whose difference makes a stored baseline incomparable (unless the user allows them).
ENV_FIELDS = ("device_name", "gpu_count", "driver_version", "cuda_version", "torch", "transformers", "torchao")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "unknown"


def machine_class(environment: Mapping) -> str:
    """A folder name (every part slugged, so a results file's environment cannot lead it elsewhere)."""
    if environment.get("gpu_count"):
        return f"gpu-{slug(environment['gpu_count'])}x-{slug(str(environment.get('device_name')))}"
    return f"cpu-{slug(environment.get('cpu_model', 'unknown'))}-{slug(environment.get('cpu_cores', 0))}c"


def env_subset(environment: Mapping) -> dict:
    return {name: environment.get(name) for name in ENV_FIELDS}


def env_differences(baseline: Mapping, current: Mapping, allowed: tuple[str, ...] = ()) -> list[str]:
    """Fields that differ, as 'field: old -> new', minus those the user allowed."""
    return [
        f"{name}: {baseline.get(name)} -> {current.get(name)}"
        for name in ENV_FIELDS
        if name not in allowed and baseline.get(name) != current.get(name)
    ]
