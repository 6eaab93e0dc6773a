"""Runners: one per task kind (decoder generation, pipelines, recommendation, ...).

A runner turns a case into sessions (one per lever stack), prepares inputs outside any timed
region, runs one iteration and returns an Output: the value compared with the baseline
stack's, and raw times only. Statistics live in harness.analyse.stats.

What the families share is written once here: the runners' constructor (`RunnerBase`), the
session scaffold (`SessionBase`: model, plan, device, the wrapped step, its timed-region guards,
the operator probe), the KV caches a plan names (`CACHE_FACTORIES`), the seeding of synthetic
inputs (`input_generator`) and the reading of a run's named clock marks (`timings`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch

from harness.analyse.stats import decode_intervals

if TYPE_CHECKING:
    from harness.levers.plan import Plan
    from harness.measure.clock import Marks

# Mark names of a token loop: each forward (over the prompt, then one per decode step), and the
# token choice after it where the choice is a stage of its own (a runner's `select`, beam search).
FORWARD_MARKS = ("prefill", "decode")
CHOICE_MARKS = ("prefill_choice", "decode_choice")


@dataclass
class Output:
    value: object  # compared with the baseline stack's value by the runner's `compare`
    metrics: dict  # metric -> one sample (float) or several (list of floats), seconds
    stages_s: dict = field(default_factory=dict)  # stage -> seconds of this iteration
    generated_tokens: dict = field(default_factory=dict)  # kind ("text", "image") -> tokens per sequence


class Runner(Protocol):
    def __init__(self, case, model, device: str, seed: int) -> None: ...

    def session(self, plan: Plan): ...

    def inputs(self, draw: tuple[int, int]) -> object: ...

    def run(self, session, inputs) -> Output: ...

    def compare(self, expected, got):  # -> None, or an object with .describe()
        ...


def wrap_step(step: Callable, plan: Plan, session) -> tuple[Callable, dict[str, object]]:
    """Apply the plan's step wrappers in order (compile, CUDA graphs, ...); each stays reachable
    by its lever's name, for its evidence."""
    wrappers: dict[str, object] = {}
    for name, factory in plan.step_wrappers:
        step = factory(step, session)
        wrappers[name] = step
    return step, wrappers


@contextmanager
def wrappers_timed(wrappers: dict[str, object]) -> Iterator[None]:
    """Enter every wrapper's timed-region guard (compile: no recompiles allowed)."""
    with ExitStack() as stack:
        for wrapper in wrappers.values():
            if hasattr(wrapper, "timed"):
                stack.enter_context(wrapper.timed())
        yield


def _dynamic_cache(config, max_len: int):
    from transformers import DynamicCache  # on first use: importing the runners' base imports no transformers

    return DynamicCache(config=config)


def _static_cache(config, max_len: int):
    from transformers import StaticCache

    return StaticCache(config=config, max_cache_len=max_len)


CACHE_FACTORIES: dict[str, Callable] = {"dynamic": _dynamic_cache, "static": _static_cache}


def fresh_cache(cache, kind: str, config, max_len: int):
    """A self-attention cache ready for a new run: a static one reset in place (captured graphs
    keep pointing at the same buffers), otherwise a new one of the plan's kind."""
    from transformers import StaticCache

    if isinstance(cache, StaticCache):
        cache.reset()
        return cache
    return CACHE_FACTORIES[kind](config, max_len)


class RunnerBase:
    """A runner's constructor: the case, its model (built by the harness), the device and the seed."""

    # True when the model is this runner's alone (the harness took it from its cache): a quantized
    # stack's session then quantizes it in place. False: other sessions share it, so a quantized
    # session quantizes a copy (harness.levers.quantize_model).
    owns_model = False

    def __init__(self, case, model, device: str, seed: int) -> None:
        self.case = case
        self.model = model
        self.device = device
        self.seed = seed


class SessionBase:
    """One model under one plan. A subclass sets up its own state, then calls `ready` with the
    step the plan's wrappers (compile, CUDA graphs) go around."""

    cache = None  # the KV cache a CUDA-graph wrapper rewinds after capture (None: no cache)

    def __init__(self, model, plan: Plan) -> None:
        self.model = model
        self.plan = plan
        self.device = next(model.parameters()).device

    def ready(self, step: Callable) -> Callable:
        """Reset for the first run, then wrap `step`: the wrapped step to call in timed runs."""
        self.reset()
        wrapped, self.wrappers = wrap_step(step, self.plan, self)
        return wrapped

    def reset(self) -> None:
        """Before each run: fresh per-run state (caches); nothing by default."""

    def activate(self) -> None:
        """Before this session's runs when sessions of one model take turns (interleaved rounds):
        put back whatever of the plan lives on the shared model; nothing by default."""

    def timed(self):
        return wrappers_timed(self.wrappers)

    def probe_forward(self) -> tuple[Callable, dict]:
        """(module, keyword arguments) of one short uncached forward, made outside the probe."""
        raise NotImplementedError(f"{type(self).__name__} has no operator probe")

    def probe_op_names(self) -> set[str]:
        """Operator names of one short uncached forward, for lever evidence (never timed)."""
        module, kwargs = self.probe_forward()
        with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            module(**kwargs)
        return {event.key for event in prof.key_averages()}


def input_generator(seed: int, size: int, batch_size: int, stride: int = 101) -> torch.Generator:
    """The CPU generator of one synthetic input: the same seed, size and batch give the same
    draws for every stack and device (harness.spec.workload.prompt_ids seeds the same way)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + size * stride + batch_size)


def timings(marks: Marks, tokens: Collection[str] = (), stages: Mapping[str, str] | None = None) -> tuple[dict, dict]:
    """(metrics, stages_s) of one run from its named clock marks.

    metrics: e2e_s, start to the last mark; with `tokens` (the names of the marks at which a token
    is chosen) first ttft_s, start to the first of them, and tpot_s, the seconds between
    consecutive ones. stages_s: `stages` maps mark names to stage names; each mark's span (since
    the mark before it) counts to its stage, and every stage named there is reported, 0 if none
    of its marks was taken. Marks of other names count to no stage."""
    stages = stages or {}
    stages_s = dict.fromkeys(stages.values(), 0.0)
    for name, seconds in marks.spans():
        if name in stages:
            stages_s[stages[name]] += seconds
    metrics: dict = {}
    if tokens:
        token_s = marks.of(*tokens)
        metrics = {"ttft_s": token_s[0], "tpot_s": decode_intervals(token_s)}
    metrics["e2e_s"] = marks.seconds[-1]
    return metrics, stages_s
