"""CUDA graphs: capture one decode step once, then replay it per token.

Removes the per-kernel launch overhead that leaves the GPU idle in decode (the paper's
main finding). Needs fixed shapes and buffers, hence the static cache (decoders) or the
`fixed` layout (recommenders, whose step is the encoder over a fixed-width batch).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from harness.levers import Lever, LeverNotInEffect

if TYPE_CHECKING:
    import torch

WARMUP_CALLS = 2  # eager calls on a side stream before capture, as torch.cuda.graphs advises


def _cache_counters(cache) -> list[torch.Tensor]:
    return [layer.cumulative_length for layer in getattr(cache, "layers", ()) if hasattr(layer, "cumulative_length")]


class GraphedStep:
    def __init__(self, step, session) -> None:
        self._step = step
        self._session = session
        self._graph: torch.cuda.CUDAGraph | None = None
        self.captures = 0
        self.replays = 0

    def _capture(self, *args) -> None:
        import torch

        self._inputs = [arg.clone() for arg in args]
        saved = [counter.clone() for counter in _cache_counters(self._session.cache)]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_CALLS):
                self._step(*self._inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._output = self._step(*self._inputs)
        # Warm-up calls advanced the cache position; rewind it so the real step writes in place.
        for counter, value in zip(_cache_counters(self._session.cache), saved, strict=True):
            counter.copy_(value)
        self.captures += 1

    def __call__(self, *args):
        if self._graph is None:
            self._capture(*args)
        for buffer, arg in zip(self._inputs, args, strict=True):
            buffer.copy_(arg)
        self._graph.replay()
        self.replays += 1
        return self._output.clone()

    def stats(self) -> dict:
        return {"captures": self.captures, "replays": self.replays}


def configure(plan):
    return dataclasses.replace(plan, step_wrappers=plan.step_wrappers + (("cudagraphs", GraphedStep),))


def evidence(session) -> dict:
    stats = session.wrappers["cudagraphs"].stats()
    if stats["replays"] < 1:
        raise LeverNotInEffect("cudagraphs: the decode step was never replayed from a graph")
    return stats


LEVER = Lever(
    name="cudagraphs",
    slot="graphs",
    summary="CUDA graph capture and replay of the decode step",
    configure=configure,
    brief=lambda found: f"replays={found['replays']}",
    evidence=evidence,
    device_types=frozenset({"cuda"}),
    needs=frozenset({"step_wrappers"}),
    requires=("static|fixed",),  # fixed shapes: a static KV cache, or fixed-width recommender batches
)
