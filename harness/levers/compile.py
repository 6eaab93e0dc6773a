"""torch.compile of the decode step (prefill stays eager, as in gpt-fast).

Evidence: graphs compiled, graph breaks, and proof that timed iterations compiled nothing.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from harness.levers import Lever, LeverNotInEffect


class CompiledDuringTiming(AssertionError):
    """torch.compile compiled inside timed iterations: the samples would include compile time."""


def _compile_counts() -> tuple[int, int]:
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    breaks = sum(counters["graph_break"].values())
    return graphs, breaks


_SINCE_RESET: dict[str, tuple[int, int]] = {}  # the counts at the last reset_compiled (per process)


def reset_compiled() -> None:
    """Before a workload's sessions are built (Lever.reset): graphs cached for an earlier workload
    would hide this one's compiles and guards. Not per session: the sessions of one workload stay
    compiled side by side while their rounds interleave."""
    import torch

    torch._dynamo.reset()
    _SINCE_RESET["counts"] = _compile_counts()


def workload_graphs() -> int:
    """Graphs compiled since the last reset: where a model has graph breaks, its inner frames are
    compiled once and every compile session of the workload runs them (guards on the same modules)."""
    start = _SINCE_RESET.get("counts", (0, 0))
    return _compile_counts()[0] - start[0]


KV_LENGTH_DIM = -2  # [batch, kv heads, positions, head dim]: the one dimension a decode step grows


def mark_growing_cache(cache) -> None:
    """A dynamic KV cache grows by one position per step: dynamo would first compile the step for
    the first length, then recompile it with that dimension symbolic when the second step's differs
    (automatic dynamic shapes). Marking it dynamic up front compiles that second, symbolic graph
    at once: the same graph the timed steps run, without the first one, which only warm-up ever
    called (a compile of about a third of a tiny case's cold-cache start on the CPU). A symbolic
    graph is also the same for every prompt length, so inductor's cache serves it to the family's
    other workloads. A static cache (fixed shapes) has nothing to mark."""
    import torch

    for layer in getattr(cache, "layers", ()) if type(cache).__name__ == "DynamicCache" else ():
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor) and tensor.dim() == 4:
                torch._dynamo.maybe_mark_dynamic(tensor, tensor.dim() + KV_LENGTH_DIM)


class CompiledStep:
    """The compiled step. Its evidence counts the graphs and breaks compiled during its own
    untimed calls (other sessions compile the same code object in between)."""

    def __init__(self, step, session) -> None:
        import torch

        self._session = session
        self._fn = torch.compile(step)
        self._graphs = self._breaks = 0
        self._timing = False
        self.recompiles_during_timing: int | None = None

    def __call__(self, *args):
        if self._timing:  # the timed guard below checks the counts around the whole region
            return self._fn(*args)
        before = _compile_counts()
        mark_growing_cache(getattr(self._session, "cache", None))  # untimed calls only: the timed ones find the graph symbolic
        try:
            return self._fn(*args)
        finally:
            graphs, breaks = (now - then for now, then in zip(_compile_counts(), before, strict=True))
            self._graphs += graphs
            self._breaks += breaks

    @contextmanager
    def timed(self):
        import torch

        before = _compile_counts()
        self._timing = True
        try:
            with torch._dynamo.config.patch(error_on_recompile=True):
                yield
        except torch._dynamo.exc.RecompileError as exc:
            raise CompiledDuringTiming(f"compile: recompiled inside timed iterations: {exc}") from None
        finally:
            self._timing = False
        graphs, breaks = (now - then for now, then in zip(_compile_counts(), before, strict=True))
        self.recompiles_during_timing = graphs
        if graphs or breaks:
            raise CompiledDuringTiming(
                f"compile: {graphs} graph(s) compiled and {breaks} graph break(s) inside timed iterations"
            )

    def stats(self) -> dict:
        return {"graphs": self._graphs, "graph_breaks": self._breaks, "recompiles_during_timing": self.recompiles_during_timing,
                "workload_graphs": workload_graphs()}


def configure(plan):
    return dataclasses.replace(plan, step_wrappers=plan.step_wrappers + (("compile", CompiledStep),))


def evidence(session) -> dict:
    stats = session.wrappers["compile"].stats()
    if stats["graphs"] < 1 and stats["workload_graphs"] < 1:
        raise LeverNotInEffect("compile: no graph was compiled")
    return {**stats, "backend": "inductor"}


LEVER = Lever(
    name="compile",
    slot="compile",
    summary="torch.compile (inductor) of the decode step",
    configure=configure,
    brief=lambda found: f"graphs={found['graphs']} breaks={found['graph_breaks']} recompiles={found['recompiles_during_timing']}",
    evidence=evidence,
    needs=frozenset({"step_wrappers"}),
    reset=reset_compiled,
)
