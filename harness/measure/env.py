"""The environment block stored with every result: what a number depends on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch
import transformers


def _run(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(cwd: Path) -> dict:
    commit = _run(["git", "rev-parse", "HEAD"], cwd)
    # Untracked files count (an untracked conftest.py changes what runs); ignored ones (results/) do not.
    status = _run(["git", "status", "--porcelain"], cwd)
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def cuda_block(device: str) -> dict:
    if not device.startswith("cuda"):
        return {"device_name": cpu_model(), "cuda_version": None, "driver_version": None, "gpu_count": 0}
    properties = torch.cuda.get_device_properties(device)
    driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], Path.cwd())
    return {
        "device_name": properties.name,
        "cuda_version": torch.version.cuda,
        "driver_version": driver.splitlines()[0] if driver else None,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_bytes": properties.total_memory,
    }


# Settings that decide how many threads an operator uses and where they run (docs/drift.md).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")


def apply_threads(threads: int) -> None:
    """Set torch's intra-op thread count for the run (--threads; 0 leaves torch's own choice).
    Set once at start-up, before any model runs, and recorded in the environment."""
    if threads:
        torch.set_num_threads(threads)


def thread_settings() -> dict:
    return {
        "torch_threads": torch.get_num_threads(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "thread_env": {name: os.environ[name] for name in THREAD_ENV if name in os.environ},
    }


def torchao_version() -> str | None:
    """torchao's version (quantized stacks' kernels come from it); None where it is not installed."""
    try:
        return importlib.metadata.version("torchao")
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: str, cwd: Path | None = None) -> dict:
    return {
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torchao": torchao_version(),
        "device": device,
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        **thread_settings(),
        **cuda_block(device),
        **git_state(cwd or Path.cwd()),
    }
