"""Runners: one per task kind (decoder generation, pipelines, recommendation, ...).

A runner turns a case into sessions (one per lever stack), prepares inputs outside any timed
region, runs one iteration and returns an Output: the value compared with the baseline
stack's, and raw times only. Statistics live in harness.analyse.stats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.levers.plan import Plan


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
