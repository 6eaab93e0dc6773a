"""Decoder runner: our own prefill + per-token greedy decode loop over transformers' caches.

A hand-written loop gives prefill and per-token times directly and costs less than
`generate()` per token (FACTS.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch
from transformers import DynamicCache, StaticCache

from harness.clock import make_clock
from harness.profile.annotate import PhaseClock, annotations
from harness.equivalence import first_mismatch
from harness.runners import Output, Plan
from harness.stats import decode_intervals
from harness.workload import prompt_ids

CACHE_FACTORIES = {
    "dynamic": lambda config, max_len: DynamicCache(config=config),
    "static": lambda config, max_len: StaticCache(config=config, max_cache_len=max_len),
}


@dataclass
class Generation:
    tokens: torch.Tensor  # [batch, gen_len], on the CPU
    marks_s: list[float]  # seconds from start: first token, then each decoded token


class DecoderSession:
    """One model under one plan. Only one session per model may be in use at a time,
    because the attention implementation is a property of the model."""

    def __init__(self, model, plan: Plan, batch_size: int, max_cache_len: int) -> None:
        self.model = model
        self.plan = plan
        self.batch_size = batch_size
        self.max_cache_len = max_cache_len
        self.device = next(model.parameters()).device
        model.set_attn_implementation(plan.attn_implementation)
        self.cache = None
        self.reset()
        self.wrappers: dict[str, object] = {}
        step = self._greedy_step
        for name, factory in plan.step_wrappers:
            step = factory(step, self)
            self.wrappers[name] = step
        self.decode_step = step

    def reset(self) -> None:
        if isinstance(self.cache, StaticCache):
            self.cache.reset()  # in place: captured graphs keep pointing at the same buffers
        else:
            self.cache = CACHE_FACTORIES[self.plan.cache](self.model.config, self.max_cache_len)

    def _greedy_step(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, cache=self.cache, position_ids=position_ids).logits
        return logits[:, -1].argmax(-1, keepdim=True)

    def prefill(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=self.device).expand(input_ids.shape[0], -1)
        return self._greedy_step(input_ids, positions)

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Enter every wrapper's timed-region guard (compile: no recompiles allowed)."""
        with ExitStack() as stack:
            for wrapper in self.wrappers.values():
                if hasattr(wrapper, "timed"):
                    stack.enter_context(wrapper.timed())
            yield

    def probe_op_names(self) -> set[str]:
        """Operator names of one short uncached forward, for lever evidence (never timed)."""
        probe = torch.zeros((1, 4), dtype=torch.long, device=self.device)
        with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            self.model(input_ids=probe, use_cache=False)
        return {event.key for event in prof.key_averages()}


def decode_positions(batch_size: int, prompt_len: int, gen_len: int, device) -> list[torch.Tensor]:
    """Position tensors made before timing; separate tensors (not views) so compile sees one kind."""
    return [torch.full((batch_size, 1), prompt_len + i, device=device) for i in range(gen_len - 1)]


@torch.no_grad()
def generate(session: DecoderSession, input_ids: torch.Tensor, positions: list[torch.Tensor], clock) -> Generation:
    """Greedy generation of len(positions)+1 tokens; one clock mark per token."""
    session.reset()
    step = session.decode_step
    clock.start()
    token = session.prefill(input_ids)
    clock.mark()
    tokens = [token]
    for position in positions:
        token = step(token, position)
        tokens.append(token)
        clock.mark()
    marks = clock.elapsed_s()
    return Generation(tokens=torch.cat(tokens, dim=1).cpu(), marks_s=marks)


class DecoderRunner:
    """Greedy text generation: prefill, then one decode step per token."""

    compare = staticmethod(first_mismatch)

    def __init__(self, case, model, device: str, seed: int) -> None:
        self.case = case
        self.model = model
        self.device = device
        self.seed = seed

    def session(self, plan: Plan) -> DecoderSession:
        return DecoderSession(self.model, plan, self.case.batch_size, self.case.lengths.max_total_len())

    def inputs(self, draw: tuple[int, int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        prompt_len, gen_len = draw
        ids = prompt_ids(self.case.batch_size, prompt_len, self.model.config.vocab_size, self.seed)
        return ids.to(self.device), decode_positions(self.case.batch_size, prompt_len, gen_len, self.device)

    def run(self, session: DecoderSession, inputs, annotate: bool = False) -> Output:
        """One generation. `annotate` (the profiled iteration only) adds phase and category
        ranges for the profiler; timed iterations never pay for them."""
        ids, positions = inputs
        clock = make_clock(self.device, len(positions) + 1)
        if annotate:
            with annotations(session) as ranges:
                generation = generate(session, ids, positions, PhaseClock(clock, len(positions) + 1, ranges.prefill_done))
        else:
            generation = generate(session, ids, positions, clock)
        marks = generation.marks_s
        metrics = {"ttft_s": marks[0], "tpot_s": decode_intervals(marks), "e2e_s": marks[-1]}
        return Output(value=generation.tokens, metrics=metrics)
