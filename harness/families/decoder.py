"""Decoder runner: our own prefill + per-token greedy decode loop over transformers' caches.

A hand-written loop gives prefill and per-token times directly and costs less than
`generate()` per token (docs/facts.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.families import family_spec
from harness.families.base import CHOICE_MARKS, FORWARD_MARKS, Output, RunnerBase, SessionBase, fresh_cache, timings
from harness.families.speculative import Bookkeeping, RoundPhaseClock, round_metrics, spec_marks, speculative_generate
from harness.levers.plan import Plan, plan_for
from harness.levers.quantize_model import quantize_in_place, quantized_copy
from harness.measure.clock import Marks, make_clock
from harness.measure.equivalence import TIE_RELATIVE, first_mismatch, greedy_ties, row_mismatches, tie_note
from harness.measure.profile.annotate import PhaseClock
from harness.measure.profile.annotate import annotations as category_ranges
from harness.spec.workload import prompt_ids


@dataclass
class Generation:
    tokens: torch.Tensor  # [batch, gen_len], on the CPU
    marks: Marks  # every mark of the run, named: "encode", FORWARD_MARKS, CHOICE_MARKS (harness.families.base)
    marks_s: list[float]  # seconds from start to each token's mark: the first token, then each decoded one


PROBE_PROMPT_LEN = 4  # the evidence probe's prefill before its one decode step


class DecoderSession(SessionBase):
    """One model under one plan. The attention implementation is a property of the model, so
    sessions of one model take turns: `activate` sets it back before each of this session's runs."""

    def __init__(self, model, plan: Plan, batch_size: int, max_cache_len: int, owns_model: bool = False) -> None:
        # A quantized stack quantizes the model in place when it is this session's alone
        # (`owns_model`: RunnerBase.owns_model), so no float copy stays beside the quantized one.
        quantize = quantize_in_place if owns_model else quantized_copy
        self.quantized = quantize(model, plan.quantization) if plan.quantization else None
        super().__init__(self.quantized.model if self.quantized else model, plan)
        self.batch_size = batch_size
        self.max_cache_len = max_cache_len
        self.model.set_attn_implementation(plan.attn_implementation)
        # position ids sliced by the speculative loop (harness.families.speculative), made once outside timing
        self.positions = torch.arange(max_cache_len, device=self.device).expand(batch_size, -1)
        self.speculation = Bookkeeping()  # every speculative generation of this session (lever evidence)
        self.decode_step = self.ready(self.forward_step)

    def activate(self) -> None:
        if self.model.config._attn_implementation != self.plan.attn_implementation:
            self.model.set_attn_implementation(self.plan.attn_implementation)

    def reset(self) -> None:
        self.cache = fresh_cache(self.cache, self.plan.cache, self.model.config, self.max_cache_len)

    def forward_step(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """One forward over the cache, before any lever wraps it: here the greedy next token;
        a subclass may return logits and leave the choice to `generate`'s `select`."""
        return self.step_logits(input_ids, position_ids).argmax(-1, keepdim=True)

    def step_logits(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """[rows, vocab] logits of the last position (teacher-forced output checks read these).
        The LM head runs on that position only (`logits_to_keep=1`, as generate() and serving
        engines do): a prefill over the prompt never makes [rows, prompt, vocab] logits."""
        logits = self.model(input_ids=input_ids, cache=self.cache, position_ids=position_ids, logits_to_keep=1).logits
        return logits[:, -1]

    def prefill(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The forward over the whole prompt, unwrapped (the step wrappers hold one-token steps):
        the greedy first token, or the step's logits for a subclass that leaves the choice to `select`."""
        positions = torch.arange(input_ids.shape[1], device=self.device).expand(input_ids.shape[0], -1)
        return self.forward_step(input_ids, positions)

    def probe_forward(self) -> tuple:
        return self.model, {"input_ids": torch.zeros((1, 4), dtype=torch.long, device=self.device), "use_cache": False}

    def probe_op_names(self) -> set[str]:
        """Operator names of one decode step as the timed loop runs it: one token over this session's
        own cache after a short prefill. An uncached probe would name another SDPA backend: without a
        cache transformers skips the mask (flash-eligible), while a static cache's decode passes one."""
        self.reset()
        ids = torch.zeros((self.batch_size, PROBE_PROMPT_LEN), dtype=torch.long, device=self.device)
        position = torch.full((self.batch_size, 1), PROBE_PROMPT_LEN, device=self.device)
        with torch.no_grad():
            self.prefill(ids)
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                self.forward_step(ids[:, :1], position)
        self.reset()  # the cache as a run expects it (in place: a captured graph keeps its buffers)
        return {event.key for event in prof.key_averages()}


def decode_positions(batch_size: int, prompt_len: int, gen_len: int, device) -> list[torch.Tensor]:
    """Position tensors made before timing; separate tensors (not views) so compile sees one kind."""
    return [torch.full((batch_size, 1), prompt_len + i, device=device) for i in range(gen_len - 1)]


def clock_marks(tokens: int, select=None, encode=None) -> int:
    """Marks `generate` records for this many tokens (size of the clock to hand it): one per
    forward, one per choice with `select`, one for `encode`."""
    return tokens * (2 if select is not None else 1) + (1 if encode is not None else 0)


@torch.no_grad()
def generate(
    session: DecoderSession, input_ids, positions: list[torch.Tensor], clock, select=None, encode=None
) -> Generation:
    """Greedy generation of len(positions)+1 tokens; one clock mark per token.

    Two optional pieces for multimodal tasks, both on the same clock: `encode(input_ids) -> ids`
    runs before prefill (image tokenization, mark "encode"), and `select(step_output) -> (token,
    fed_back)` turns a step's logits into the emitted token and the next step's input (vocabulary
    masks, classifier-free guidance), marked apart (CHOICE_MARKS) so that selection is a stage of
    its own.
    """
    session.reset()
    step = session.decode_step
    clock.start()
    if encode is not None:
        input_ids = encode(input_ids)
        clock.mark("encode")

    def finish(output: torch.Tensor, forward: str, choice: str) -> tuple[torch.Tensor, torch.Tensor]:
        clock.mark(forward)
        if select is None:
            return output, output
        chosen = select(output)
        clock.mark(choice)
        return chosen

    token, fed = finish(session.prefill(input_ids), "prefill", "prefill_choice")
    tokens = [token]
    for position in positions:
        token, fed = finish(step(fed, position), "decode", "decode_choice")
        tokens.append(token)
    marks = clock.marks()
    token_s = marks.of(*(FORWARD_MARKS if select is None else CHOICE_MARKS))
    return Generation(torch.cat(tokens, dim=1).cpu(), marks, token_s)


@torch.no_grad()
def forced_scores(
    session: DecoderSession, input_ids, positions: list[torch.Tensor], reference: torch.Tensor,
    encode=None, score=lambda logits: logits, feed=lambda tokens: tokens,
) -> torch.Tensor:
    """[batch, tokens, vocab] scores at each generated position with the reference's tokens fed
    back (teacher forcing), so that one early difference does not make every later position
    incomparable. Runs the session's model (quantized, for a lossy lever) eagerly, outside any
    timed region: step wrappers (compile, CUDA graphs) are the exact levers, checked elsewhere.
    `score` turns a step's logits into the choice's scores (masks, guidance); `feed` widens a
    [batch, 1] token column to the step's rows (guidance streams)."""
    session.reset()
    if encode is not None:
        input_ids = encode(input_ids)
    prefill_positions = torch.arange(input_ids.shape[1], device=session.device).expand(input_ids.shape[0], -1)
    scores = [score(session.step_logits(input_ids, prefill_positions))]
    for index, position in enumerate(positions):
        fed = feed(reference[:, index : index + 1].to(session.device))
        scores.append(score(session.step_logits(fed, position)))
    return torch.stack(scores, dim=1).float().cpu()


class DecoderRunner(RunnerBase):
    """Greedy text generation: prefill, then one decode step per token."""

    compare = staticmethod(first_mismatch)
    tie_relative = TIE_RELATIVE  # near-ties (harness.measure.equivalence)
    profiles = True  # run(..., annotate=True) marks prefill and decode for the profiled iteration

    def session(self, plan: Plan) -> DecoderSession:
        return DecoderSession(self.model, plan, self.case.batch_size, self.case.lengths.max_total_len(), self.owns_model)

    def inputs(self, draw: tuple[int, int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        prompt_len, gen_len = draw
        ids = prompt_ids(self.case.batch_size, prompt_len, self.model.config.vocab_size, self.seed)
        return ids.to(self.device), decode_positions(self.case.batch_size, prompt_len, gen_len, self.device)

    def forced_scores(self, session: DecoderSession, inputs, reference: torch.Tensor) -> torch.Tensor:
        ids, positions = inputs
        return forced_scores(session, ids, positions, reference)

    def run(self, session: DecoderSession, inputs, annotate: bool = False) -> Output:
        """One generation. `annotate` (the profiled iteration only) adds phase and category
        ranges for the profiler; timed iterations never pay for them."""
        ids, positions = inputs
        if session.plan.drafting is not None:
            return self._run_speculative(session, ids, len(positions) + 1, annotate)
        clock = make_clock(self.device, len(positions) + 1)
        if annotate:
            with category_ranges(session) as ranges:
                generation = generate(session, ids, positions, PhaseClock(clock, len(positions) + 1, ranges.prefill_done))
        else:
            generation = generate(session, ids, positions, clock)
        metrics, _ = timings(generation.marks, FORWARD_MARKS)
        # time_per_forward_s: one full-model forward per token here; speculation makes them differ
        metrics["time_per_forward_s"] = metrics["tpot_s"]
        return Output(value=generation.tokens, metrics=metrics, generated_tokens={"text": generation.tokens.shape[1]})

    def _run_speculative(self, session: DecoderSession, ids: torch.Tensor, gen_len: int, annotate: bool) -> Output:
        """One speculative generation (harness/families/speculative.py); its counts feed the lever's evidence."""
        marks = spec_marks(gen_len)
        clock = make_clock(self.device, marks)
        if annotate:
            with category_ranges(session) as ranges:
                phases = PhaseClock(clock, marks, ranges.prefill_done)
                generation = speculative_generate(session, ids, gen_len, RoundPhaseClock(clock, phases))
        else:
            generation = speculative_generate(session, ids, gen_len, clock)
        session.speculation.merge(generation.book)
        book, marks_s = generation.book, generation.marks_s
        metrics = {
            "ttft_s": marks_s[0], "e2e_s": marks_s[-1], **round_metrics(marks_s, generation.emitted),
            "drafted_tokens": book.drafted, "accepted_tokens": book.accepted, "verify_forwards": book.rounds,
        }
        return Output(value=generation.tokens, metrics=metrics, generated_tokens={"text": generation.tokens.shape[1]})

    def near_tie(self, expected: torch.Tensor, got: torch.Tensor, draw: tuple[int, int], session=None) -> str | None:
        """Why reduced precision may legitimately change a greedy answer: at every batch row's
        first divergence (tokens after it are not comparable any more) the baseline's own logits
        of the expected and the produced token are within the dtype's rounding of each other
        (tie_relative x the largest logit there); None otherwise."""
        mismatches = row_mismatches(expected, got)
        if not mismatches:
            return None
        ids, positions = self.inputs(draw)
        # The baseline's own session fed its own tokens up to the last divergence (teacher forcing,
        # outside any timed region): the very logits it chose from, not a re-computation in another stack.
        baseline = self.session(plan_for(family_spec(self.case.family).baseline))
        scores = forced_scores(baseline, ids, positions[: max(m.position for m in mismatches)], expected)
        allowed = self.tie_relative[self.case.dtype] * scores.abs().amax(-1)
        return tie_note(greedy_ties(mismatches, scores, allowed))
