"""Chameleon runner: image understanding (it, itt), image generation (ti) and text (tt).

Reuses the decoder runner's session (cache and levers) and `generate` loop, adding three small
pieces: the VQ image tokenization before prefill, a step that returns logits over the whole
vocabulary (transformers' forward masks image tokens, which text-to-image needs), and the token
choice after each step: the text vocabulary for text tasks; for `ti`, classifier-free guidance
over a tripled batch followed by an image-vocabulary mask (transformers has no text-to-image mode).

Sequences (prompt_len counts text tokens, the leading BOS included):
  it, itt: [bos, boi, image tokens, eoi, text...]      (captioning / question after the image)
  tt:      [bos, text...]
  ti:      [bos, text..., boi], then exactly gen_len image tokens per image.
For `ti` the batch holds three streams per image (the reference's order): full-conditioned,
image-conditioned and unconditioned. From a text-only prompt the reference reduces the last two
to [bos, boi] and right-aligns every stream with padding; here they are [pad..., bos, boi], the
same length as the full stream and without a padding mask, so every step computes what the
reference's padded batch computes (the pads are attended to; harmless for timing, and outputs
are compared between stacks of this same runner).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from harness.errors import HarnessError
from harness.families import family_spec
from harness.families.base import CHOICE_MARKS, Output, RunnerBase, input_generator, timings
from harness.families.chameleon.model import image_tokens_per_image, vocab_layout
from harness.families.chameleon.presets import REFERENCE_GUIDANCE, TASKS, Guidance
from harness.families.decoder import DecoderSession, clock_marks, decode_positions, forced_scores, generate
from harness.levers.plan import Plan, plan_for
from harness.measure.clock import make_clock
from harness.measure.equivalence import TIE_RELATIVE, first_mismatch, greedy_ties, row_mismatches, tie_note
from harness.measure.profile.annotate import stage_clock, stage_phase
from harness.measure.profile.sol import SolView
from harness.spec.workload import prompt_ids

# Under the profiler a tiny image token costs ~40 ms on the 2-core CPU, against ~2.4 ms timed (measured):
# a whole 1024-token image took 67 s to profile and minutes to analyse; 32 tokens took 2.8 s (a loaded machine).
PROFILE_IMAGE_TOKENS = 32


def cfg_combine(logits: torch.Tensor, guidance: Guidance) -> torch.Tensor:
    """[3B, V] logits of the three streams -> [B, V] guided logits (InstructPix2Pix-style, as
    the reference: uncond + s_img * (img - uncond) + s_txt * (full - img))."""
    full, image, uncond = logits.chunk(3)
    return uncond + guidance.image_scale * (image - uncond) + guidance.text_scale * (full - image)


def cfg_gain(guidance: Guidance | None) -> float:
    """How much cfg_combine can grow a rounding error of its streams' logits: the sum of its
    coefficients' magnitudes, (1 - s_img) uncond + (s_img - s_txt) image + s_txt full (the
    reference's scales: 0.2 + 1.8 + 3 = 5); 1 without guidance."""
    if guidance is None:
        return 1.0
    image, text = guidance.image_scale, guidance.text_scale
    return abs(1 - image) + abs(image - text) + abs(text)


def allow_only(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Logits outside `allowed` ([V] bool) set to -inf, so no other token can be chosen."""
    return logits.masked_fill(~allowed, float("-inf"))


class ChameleonSession(DecoderSession):
    """The decoder session with a step that ends in logits of the last position."""

    def forward_step(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.model.model(input_ids=input_ids, cache=self.cache, position_ids=position_ids).last_hidden_state
        return self.model.lm_head(hidden[:, -1])  # lm_head on the last position only: no [L, V] logits

    def step_logits(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        return self.forward_step(input_ids, position_ids)


@dataclass
class Prepared:
    """One iteration's inputs, made outside the timed call."""

    head: torch.Tensor  # [rows, n] ids before the image (or the whole prompt without an image)
    tail: torch.Tensor  # [rows, n] ids after the image (empty without an image)
    pixels: torch.Tensor | None  # [batch, 3, R, R] synthetic image in the model dtype
    positions: list[torch.Tensor]


def synthetic_images(batch_size: int, resolution: int, seed: int) -> torch.Tensor:
    """Seeded pixels in [-1, 1] (the VQ encoder's input range), the same for every stack."""
    generator = input_generator(seed, resolution, batch_size, stride=7)
    return torch.rand((batch_size, 3, resolution, resolution), generator=generator) * 2 - 1


def stage_names(image_in: bool, image_out: bool, guided: bool) -> dict[str, str]:
    """The stage each of `generate`'s marks counts to, so that the stages add up to end-to-end
    time. Text out: a choice counts to its forward's stage; image out: the choices are a stage of
    their own (with guidance: combining the three streams' logits, the image mask and argmax)."""
    stages = {"encode": "vq_encode_s"} if image_in else {}
    if not image_out:
        text = {"prefill": "prefill_s", "prefill_choice": "prefill_s", "decode": "text_decode_s", "decode_choice": "text_decode_s"}
        return {**stages, **text}
    choice = "cfg_s" if guided else "image_select_s"
    return {**stages, "prefill": "prefill_s", "decode": "image_decode_s", "prefill_choice": choice, "decode_choice": choice}


class ChameleonRunner(RunnerBase):
    """One Chameleon task (TASKS) under the decoder runner's sessions and levers."""

    compare = staticmethod(first_mismatch)
    profiles = True  # run(..., annotate=True) marks each stage for the profiled iteration

    def __init__(self, case, model, device: str, seed: int, guidance: Guidance | None = REFERENCE_GUIDANCE) -> None:
        super().__init__(case, model, device, seed)
        self.task = TASKS[case.task]
        self.guidance = guidance if self.task.image_out else None
        # The profiled iteration of an image decodes this many of its tokens (CaseRun.profile).
        self.profile_tokens = PROFILE_IMAGE_TOKENS if self.task.image_out else None
        self.streams = self.guidance.streams if self.guidance else 1
        self.rows = case.batch_size * self.streams
        self.vocab = vocab_layout(model.config).to(device)
        self.image_mask = self.vocab.image_mask(device)
        self.text_mask = ~self.image_mask  # text tasks never emit image tokens (as transformers' forward)
        vq = model.config.vq_config
        self.tokens_per_image = image_tokens_per_image(vq.resolution, vq.channel_multiplier)
        self.resolution = vq.resolution
        self.dtype = next(model.parameters()).dtype

    def session(self, plan: Plan) -> ChameleonSession:
        extra = self.tokens_per_image + 2 if self.task.image_in else int(self.task.image_out)  # image / boi
        return ChameleonSession(self.model, plan, self.rows, self.case.lengths.max_total_len() + extra, self.owns_model)

    # -- inputs --------------------------------------------------------------------------
    def _text(self, rows: int, length: int) -> torch.Tensor:
        """[rows, length]: BOS then seeded ids from the text vocabulary."""
        picks = prompt_ids(rows, length - 1, len(self.vocab.text_ids), self.seed).to(self.device)
        bos = torch.full((rows, 1), self.vocab.bos, device=self.device)
        return torch.cat([bos, self.vocab.text_ids[picks]], dim=1)

    def _column(self, token: int, rows: int) -> torch.Tensor:
        return torch.full((rows, 1), token, device=self.device)

    def inputs(self, draw: tuple[int, int]) -> Prepared:
        prompt_len, gen_len = draw
        batch = self.case.batch_size
        text = self._text(batch, prompt_len)
        empty = text[:, :0]
        if self.task.image_in:
            pixels = synthetic_images(batch, self.resolution, self.seed).to(self.device, self.dtype)
            head = torch.cat([text[:, :1], self._column(self.vocab.boi, batch)], dim=1)
            tail = torch.cat([self._column(self.vocab.eoi, batch), text[:, 1:]], dim=1)
            prefix_len = head.shape[1] + self.tokens_per_image + tail.shape[1]
            return Prepared(head, tail, pixels, decode_positions(batch, prefix_len, gen_len, self.device))
        if not self.task.image_out:
            return Prepared(text, empty, None, decode_positions(batch, prompt_len, gen_len, self.device))
        if gen_len > self.tokens_per_image:
            raise HarnessError(f"ti: {gen_len} tokens asked for, but an image is {self.tokens_per_image} tokens")
        full = torch.cat([text, self._column(self.vocab.boi, batch)], dim=1)
        guidance_rows = self.rows - batch
        padding = self._column(self.vocab.pad, guidance_rows).expand(-1, prompt_len - 1)
        reduced = torch.cat([padding, self._column(self.vocab.bos, guidance_rows), self._column(self.vocab.boi, guidance_rows)], dim=1)
        streams = torch.cat([full, reduced], dim=0)
        return Prepared(streams, streams[:, :0], None, decode_positions(self.rows, streams.shape[1], gen_len, self.device))

    # -- the pieces generate() calls, inside the timed region ------------------------------
    def encode(self, prepared: Prepared) -> torch.Tensor:
        """VQ-tokenize the images and splice their token ids between the prompt's pieces."""
        assert prepared.pixels is not None, "encode needs the task's images"
        codes = self.model.model.vqmodel.encode(prepared.pixels).image_tokens
        image = self.vocab.image_ids[codes].view(prepared.pixels.shape[0], -1)
        return torch.cat([prepared.head, image, prepared.tail], dim=1)

    # Choices are made in float32: guidance scales differences by 3, which bf16 rounding would blur.
    def text_scores(self, logits: torch.Tensor) -> torch.Tensor:
        return allow_only(logits.float(), self.text_mask)

    def image_scores(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        guided = cfg_combine(logits, self.guidance) if self.guidance else logits
        return allow_only(guided, self.image_mask)

    def select_text(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        token = self.text_scores(logits).argmax(-1, keepdim=True)
        return token, token

    def select_image(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        token = self.image_scores(logits).argmax(-1, keepdim=True)
        return token, token.repeat(self.streams, 1)  # every stream continues with the chosen token

    def decoder_prompt_len(self, prompt_len: int) -> int:
        """Positions the decoder's prefill runs over: the image's tokens and delimiters, or ti's boi."""
        if self.task.image_in:
            return prompt_len + self.tokens_per_image + 2
        return prompt_len + int(self.task.image_out)

    def sol_view(self, view: SolView, stages_s: dict[str, float]) -> SolView:
        """The decoder's view of one timed iteration, for its speed of light: every stream's rows,
        the prompt as the decoder sees it, the prefill stage alone (not the VQ encode before it) and
        the decode stage per token (not the guidance after each forward; text: with its choice)."""
        decode_stage = "image_decode_s" if self.task.image_out else "text_decode_s"
        steps = view.gen_len - 1
        return replace(
            view, rows=self.rows, prompt_len=self.decoder_prompt_len(view.prompt_len), prefill_s=stages_s["prefill_s"],
            per_token_s=stages_s[decode_stage] / steps if steps else None, decode_phase=stage_phase(decode_stage),
        )

    def forced_scores(self, session: ChameleonSession, prepared: Prepared, reference: torch.Tensor, score=None) -> torch.Tensor:
        """Teacher-forced scores of the task's own choice: masked (and guided, for ti) logits
        (`score`, the choice's scores of one step's logits, defaults to that)."""
        score = score or (self.image_scores if self.task.image_out else self.text_scores)
        encode = self.encode if self.task.image_in else None
        first = prepared if encode else prepared.head
        def feed(tokens):
            return tokens.repeat(self.streams, 1)
        return forced_scores(session, first, prepared.positions, reference, encode, score, feed)

    def run(self, session: ChameleonSession, prepared: Prepared, annotate: bool = False) -> Output:
        """One generation. `annotate` (the profiled iteration only) marks each stage for the
        profiler; timed iterations never pay for it."""
        encode = self.encode if self.task.image_in else None
        select = self.select_image if self.task.image_out else self.select_text
        tokens = len(prepared.positions) + 1
        stages_of_marks = stage_names(self.task.image_in, self.task.image_out, self.guidance is not None)
        first = prepared if encode else prepared.head
        bare = make_clock(self.device, clock_marks(tokens, select, encode))
        # The decode step (wrapped by compile, CUDA graphs) first runs after prefill's choice.
        with stage_clock(bare, session, stages_of_marks, "prefill", annotate) as clock:
            generation = generate(session, first, prepared.positions, clock, select=select, encode=encode)
        metrics, stages = timings(generation.marks, CHOICE_MARKS, stages_of_marks)
        kind = "image" if self.task.image_out else "text"
        return Output(value=generation.tokens, metrics=metrics, stages_s=stages, generated_tokens={kind: generation.tokens.shape[1]})

    def near_tie(self, expected: torch.Tensor, got: torch.Tensor, draw: tuple[int, int], session=None) -> str | None:
        """The decoder runner's near-tie rule on the scores this task chooses from: at every row's
        first divergence the baseline's own scores (teacher-forced with its tokens) of the expected
        and the produced token are within TIE_RELATIVE x the largest logit among the candidates
        (over the three streams for ti), times cfg_gain: guidance scales each stream's rounding."""
        mismatches = row_mismatches(expected, got)
        if not mismatches:
            return None
        prepared = self.inputs(draw)
        prepared = replace(prepared, positions=prepared.positions[: max(m.position for m in mismatches)])
        allowed_ids = self.image_mask if self.task.image_out else self.text_mask
        largest: list[torch.Tensor] = []  # per step: [batch] the largest |logit| of the candidates, over the streams

        def score(logits: torch.Tensor) -> torch.Tensor:
            candidates = logits.float().abs().masked_fill(~allowed_ids, 0)
            largest.append(candidates.amax(-1).view(self.streams, -1).amax(0).cpu())
            return self.image_scores(logits) if self.task.image_out else self.text_scores(logits)

        baseline = self.session(plan_for(family_spec(self.case.family).baseline))
        scores = self.forced_scores(baseline, prepared, expected, score)
        allowed = TIE_RELATIVE[self.case.dtype] * cfg_gain(self.guidance) * torch.stack(largest, dim=1)
        return tie_note(greedy_ties(mismatches, scores, allowed))
