"""Run options: defined once here, validated once, shared by the pytest plugin and the CLI."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.analyse.policy import DEFAULT_ALPHA, split_list
from harness.errors import HarnessError, unknown_choice
from harness.measure.rounds import CONTENTION_RATIO

DTYPE_NAMES = ("float32", "bfloat16", "float16")
DEVICE_AUTO = "auto"


@dataclass(frozen=True)
class RunOptions:
    """Everything a run can be told; every default lives on this class."""

    benchmark: bool = field(default=False, metadata={"help": "measure (otherwise: quick correctness checks)"})
    preset: str = field(default="tiny", metadata={"help": "model size preset"})
    device: str = field(default=DEVICE_AUTO, metadata={"help": "cpu, cuda, cuda:N or auto (cuda when available)"})
    dtype: str = field(default="auto", metadata={"help": "comma list of float32,bfloat16,float16; auto = bfloat16 on cuda, float32 on cpu"})
    families: str = field(default="", metadata={"help": "comma list of families to run (default: all)"})
    stacks: str = field(default="", metadata={"help": "comma list of exact stack names, e.g. eager,sdpa+static (default: all)"})
    results_dir: str = field(default="results", metadata={"help": "folder for the per-run results JSON"})
    warmup: int = field(default=2, metadata={"help": "untimed warm-up generations per case (after the output check)"})
    iterations: int = field(default=12, metadata={"help": "timed generations per case (12: see harness/analyse/verdict.py)"})
    rounds: int = field(default=0, metadata={"help": (
        "interleaved rounds per workload: each round runs every stack's next iterations/rounds iterations "
        "(0: one round per iteration, the finest interleaving; docs/rounds.md)")})
    contention_ratio: float = field(default=CONTENTION_RATIO, metadata={"help": (
        "a round whose machine-speed probe reads this many times the quiet reference is contended and re-run "
        "(0: no contention guard; docs/rounds.md)")})
    threads: int = field(default=0, metadata={"help": (
        "torch intra-op threads for the run, set at start-up and recorded (0: torch's default, one per core; "
        "docs/drift.md)")})
    quick_tokens: int = field(default=8, metadata={"help": "tokens generated per case without --benchmark"})
    seed: int = field(default=0, metadata={"help": "seed for weights, inputs and length draws"})
    checkpoint_dir: str = field(default="", metadata={"help": "load weights from this local folder instead of random ones"})
    baseline_dir: str = field(default="baselines", metadata={"help": "root of baselines/<machine-class>/<family>.json"})
    update_baselines: bool = field(default=False, metadata={"help": "merge this run's cases into the baselines instead of gating"})
    alpha: float = field(default=DEFAULT_ALPHA, metadata={"help": "significance level of the rank test per metric"})
    thresholds: str = field(default="", metadata={"help": (
        "per-metric change thresholds, e.g. e2e_s=0.05,ttft_s=0.1 "
        "(default: 5%% each on cuda; on cpu ttft_s 75%%, tpot_s 30%%, e2e_s 20%%, peak_mem_bytes 40%%; docs/drift.md)")})
    normalize: str = field(default="auto", metadata={
        "help": "divide times by the machine-speed probe's ratio before gating: on, off, auto (on for cpu)"})
    allow_env_diff: str = field(default="", metadata={
        "help": "environment fields allowed to differ from the baseline's, e.g. torch,driver_version"})
    allow_unjudged: str = field(default="", metadata={"help": (
        "kinds of unjudged verdict that do not fail the gate (otherwise exit 12), a comma list of "
        "no_baseline, missing, noisy, contended, env_mismatch, or all; they are still reported (docs/gating.md)")})
    batch_sizes: str = field(default="", metadata={"help": (
        "batch-size axis: a comma list (e.g. 1,2,4,8) for every workload, or 'sweep' for the preset's sweep "
        "(harness/families/stacks.py BATCH_SWEEPS); cells estimated not to fit the device's memory are dropped "
        "(harness/spec/fit.py); default: each workload's own batch size")})
    draft_len: int = field(default=4, metadata={
        "help": "speculative levers (selfspec, lookup): tokens drafted per verify forward, at most"})
    exit_layer: int = field(default=0, metadata={
        "help": "selfspec: decoder layers the draft runs before the final norm and lm_head (0: half the model's layers)"})
    max_ngram: int = field(default=3, metadata={"help": "lookup: longest n-gram of the output matched against prompt and output so far"})
    trace_dir: str = field(default="", metadata={
        "help": "write a Chrome/Perfetto trace of each case's profiled iteration here (also profiles quick checks)"})
    isolate: bool = field(default=False, metadata={"help": (
        "measure each workload (quick checks: each case) in a child process of its own, so a native crash "
        "(a segfault, the OOM killer, a poisoned CUDA context) records that case as crashed and the run goes on "
        "(docs/isolation.md)")})
    tables: bool = field(default=False, metadata={"help": (
        "print every table of the run at its end (per family, lever evidence, where the time goes, ladder, "
        "verdicts); without it a one-screen summary, and `harness show RESULTS` prints the tables")})
    pytest_benchmark_table: bool = field(default=False, metadata={"help": (
        "print pytest-benchmark's own timing table too (off: it repeats the e2e times; --benchmark-json still works)")})

    def with_values(self, **changes: Any) -> RunOptions:  # each field's own type (dataclasses.replace checks the names)
        return dataclasses.replace(self, **changes)


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_specs() -> list[tuple[str, str, object, str]]:
    """(dest, flag, default, help) for each option: the single source for pytest and argparse."""
    return [(f.name, option_flag(f.name), f.default, f.metadata["help"]) for f in fields(RunOptions)]


def resolve_device(name: str, cuda_available: bool) -> str:
    """Turn the device option into a concrete torch device string, or fail with one line."""
    if name == DEVICE_AUTO:
        return "cuda" if cuda_available else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise unknown_choice("device", name, ("auto", "cpu", "cuda", "cuda:N"))
    if kind == "cuda" and not cuda_available:
        raise HarnessError(f"device {name!r} asked for, but torch sees no CUDA device here")
    return name


def resolve_dtypes(text: str, device: str) -> tuple[str, ...]:
    if text == "auto":
        return ("bfloat16",) if device.startswith("cuda") else ("float32",)
    names = split_list(text)
    for name in names:
        if name not in DTYPE_NAMES:
            raise unknown_choice("dtype", name, DTYPE_NAMES)
    if not names:
        raise HarnessError("--dtype is empty; give auto or a comma list of " + ", ".join(DTYPE_NAMES))
    return names


def check_counts(options: RunOptions) -> None:
    """The counts, and the checkpoint folder: checked at start-up, before any model is built."""
    for name in ("warmup", "iterations", "quick_tokens", "draft_len", "exit_layer", "max_ngram", "threads"):
        value = getattr(options, name)
        minimum = 0 if name in ("warmup", "exit_layer", "threads") else 1
        if value < minimum:
            raise HarnessError(f"{option_flag(name)} must be at least {minimum}, got {value}")
    if options.rounds < 0 or (options.rounds and options.iterations % options.rounds):
        raise HarnessError(
            f"--rounds {options.rounds} must be 0 (one per iteration) or divide --iterations {options.iterations} "
            "into equal rounds")
    if not (options.contention_ratio == 0 or options.contention_ratio > 1):
        raise HarnessError(f"--contention-ratio must be 0 (off) or above 1, got {options.contention_ratio}")
    if options.checkpoint_dir:
        check_checkpoint_dir(Path(options.checkpoint_dir))


def check_checkpoint_dir(folder: Path) -> None:
    """--checkpoint-dir must be a folder holding a config.json (its architecture is checked when a
    family loads it: harness/families/models.py)."""
    if not folder.is_dir():
        raise HarnessError(f"--checkpoint-dir {str(folder)!r} is not a folder")
    if not (folder / "config.json").is_file():
        raise HarnessError(f"--checkpoint-dir {str(folder)!r} has no config.json")


BATCH_SWEEP = "sweep"


def parse_batch_sizes(text: str, sweep: tuple[int, ...]) -> tuple[int, ...]:
    """--batch-sizes as sizes: "" -> () (each workload's own), "sweep" -> `sweep`, else positive ints."""
    if text.strip() == BATCH_SWEEP:
        return sweep
    sizes = []
    for part in split_list(text):
        if not part.isdigit() or int(part) < 1:
            raise HarnessError(f"--batch-sizes takes '{BATCH_SWEEP}' or positive integers like 1,2,4; got {part!r}")
        sizes.append(int(part))
    return tuple(dict.fromkeys(sizes))


def check_writable_dir(path: Path, what: str = "results directory") -> None:
    """Fail before any model is built when results (or `what`) could not be saved."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"{what} {str(path)!r} is not writable: {exc.strerror or exc}") from None
