"""Runners: one per task kind (decoder generation, pipelines, recommendation, ...).

A runner turns a case into sessions (one per lever stack), prepares inputs outside any timed
region, runs one iteration and returns an Output: the value compared with the baseline
stack's, and raw times only. Statistics live in harness.stats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Plan:
    """What the levers of a stack decide before a session is built; each runner reads the
    fields that apply to it, and each lever's evidence proves it took effect."""

    attn_implementation: str = "eager"
    cache: str = "dynamic"  # "dynamic" | "static"
    step_wrappers: tuple[tuple[str, Callable], ...] = ()  # (lever, factory(step, session) -> step)
    layout: str = "padded"  # recommender batches: "padded" | "fixed" | "jagged"
    pointwise_attention: str = "torch"  # HSTU attention: "torch" | "flex"
    quantization: str = ""  # a scheme of harness.quantize.SCHEMES: the session runs a quantized copy
    drafting: object = None  # harness.speculative.Drafting: speculative greedy decoding (None: plain greedy)
    lever_params: tuple[tuple[str, int], ...] = ()  # Case.params: the stack's levers' parameters
    kv_reorder: str = "index_select"  # beam-search KV-cache reorder: "index_select" | "inplace"


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


def runner_class(kind: str) -> type:
    from harness.errors import unknown_choice
    from harness.runners.chameleon import ChameleonRunner
    from harness.runners.decoder import DecoderRunner
    from harness.runners.recommender import RecommenderRunner
    from harness.runners.seamless import SeamlessRunner

    runners = {
        "decoder": DecoderRunner, "chameleon": ChameleonRunner, "recommender": RecommenderRunner,
        "seamless": SeamlessRunner,
    }
    try:
        return runners[kind]
    except KeyError:
        raise unknown_choice("runner", kind, runners) from None
