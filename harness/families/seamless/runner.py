"""SeamlessM4T v2 runner: speech or text in, text or speech out (ss, st, ts, tt), stage by stage.

transformers' modules do the work (speech encoder, text encoder, text decoder, text-to-unit
model, vocoder); the text decoding loop is our own (`beam.py`), like the decoder runner's, so
that prefill and each step are timed directly and the beam search's KV-cache reorder is ours to
choose. Stages, each counted from named clock marks (stage_names):

  encoder      speech features -> speech encoder, or text ids -> text encoder
  prefill      decoder over [decoder start, target language] for batch x beams rows
  per step     choose tokens (greedy argmax, or beam search over summed log-probabilities),
               reorder the KV cache to the chosen beams (beam search only), one decoder step
  text-to-unit (speech out) the reference's extra decoder pass over the best sequence, the
               subword -> character expansion, the non-autoregressive text-to-unit model
  vocoder      (speech out) units -> waveform

Every hypothesis runs exactly gen_len tokens (no end-of-sequence stop, as in the other runners,
so that stacks and iterations time the same work); length normalisation is then the same for
all of them and the best beam is the highest summed log-probability.

Random weights: the unit choice is restricted to ids the vocoder has (the reference takes a
plain argmax, which a trained model keeps in range by itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache

from harness.families.base import CHOICE_MARKS, Output, RunnerBase, SessionBase, fresh_cache, input_generator, timings
from harness.families.seamless import TASKS
from harness.families.seamless.beam import REORDERS, choose, decode_text
from harness.families.seamless.model import codes
from harness.families.seamless.positions import fix_positions
from harness.families.seamless.ties import near_tie as beam_and_unit_ties
from harness.levers.plan import Plan
from harness.measure.clock import make_clock
from harness.measure.equivalence import Mismatch, first_mismatch
from harness.measure.profile.annotate import stage_clock
from harness.spec.matrix import TaskShape
from harness.spec.workload import DISTRIBUTIONS, Lengths

FEATURE_SIGMA = 1.0  # synthetic log-mel features: the feature extractor normalises to unit variance
PREFIX_LEN = 2  # [decoder start, target language]
SPEAKER_ID = 0


class SeamlessSession(SessionBase):
    """One model under one plan: attention implementation, self-attention cache kind, reorder,
    and the step wrappers (compile) around the decoder step."""

    def __init__(self, model, plan: Plan, rows: int, max_cache_len: int) -> None:
        super().__init__(model, plan)
        self.rows = rows
        self.max_cache_len = max_cache_len
        model.set_attn_implementation(plan.attn_implementation)
        fix_positions(model, max_cache_len)  # no host sync per step in the decoder's positions (positions.py)
        self.reorder_fn = REORDERS[plan.kv_reorder]
        self.kv: EncoderDecoderCache | None = None
        self.reorders = 0  # reorder calls over the session's runs
        self.steps = 0  # decoder steps after prefill over the session's runs
        self.decode_step = self.ready(self.forward_step)

    def activate(self) -> None:
        if self.model.config._attn_implementation != self.plan.attn_implementation:
            self.model.set_attn_implementation(self.plan.attn_implementation)

    @property
    def cache(self):
        """The self-attention cache (what the static-cache lever's evidence inspects)."""
        return self.kv.self_attention_cache

    def reset(self) -> None:
        previous = None if self.kv is None else self.kv.self_attention_cache
        self_attention = fresh_cache(previous, self.plan.cache, self.model.config, self.max_cache_len)
        # The cross-attention cache is always rebuilt: the next input's encoder output has its own length.
        self.kv = EncoderDecoderCache(self_attention, DynamicCache(config=self.model.config))

    def forward_step(self, input_ids: torch.Tensor, encoder_states: torch.Tensor) -> torch.Tensor:
        """Decoder over the cache, then the language-model head on the last position: [rows, vocab]."""
        hidden = self.model.text_decoder(
            input_ids=input_ids, encoder_hidden_states=encoder_states, cache=self.kv, use_cache=True
        ).last_hidden_state
        return self.model.lm_head(hidden[:, -1])

    def reorder(self, beam_idx: torch.Tensor, filled: int) -> None:
        assert self.kv is not None, "reorder before any decoding step"
        self.reorder_fn(self.kv, beam_idx, filled)
        self.reorders += 1

    def probe_forward(self) -> tuple:
        """The decoder alone, over a short uncached input and a made-up encoder output."""
        hidden = self.model.config.hidden_size
        ids = torch.full((1, 4), 5, dtype=torch.long, device=self.device)
        encoder = torch.zeros((1, 3, hidden), dtype=next(self.model.parameters()).dtype, device=self.device)
        return self.model.text_decoder, {"input_ids": ids, "encoder_hidden_states": encoder, "use_cache": False}


@dataclass
class Prepared:
    """One iteration's inputs, made outside the timed call."""

    source: torch.Tensor  # [batch, frames, features] speech features or [batch, tokens] text ids
    prefix: torch.Tensor  # [batch * beams, 2]: decoder start, target language
    offsets: torch.Tensor  # [batch, 1]: first row of each input's beams
    gen_len: int


@dataclass
class Translation:
    """The compared value: the best hypothesis's text tokens and (speech out) its units."""

    text: torch.Tensor  # [batch, gen_len], on the CPU
    units: torch.Tensor | None  # [batch, units], t2u pad where the t2u model marks padding


@dataclass(frozen=True)
class UnitMismatch:
    inner: Mismatch

    def describe(self) -> str:
        return "unit sequences: " + self.inner.describe().replace("token", "unit")


def compare(expected: Translation, got: Translation):
    mismatch = first_mismatch(expected.text, got.text)
    if mismatch is not None or expected.units is None:
        return mismatch
    assert got.units is not None, "a speech-out translation without units"
    unit_mismatch = first_mismatch(expected.units, got.units)
    return UnitMismatch(unit_mismatch) if unit_mismatch else None


def clock_marks(steps: int, speech_out: bool) -> int:
    """Marks of one run (size of its clock): encoder; prefill and prefill_choice (beam.py); per
    step reorder, decode and decode_choice; with speech out text_to_unit and vocoder."""
    return 3 + 3 * steps + (2 if speech_out else 0)


def stage_names(task: TaskShape, beam_search: bool) -> dict[str, str]:
    """The stage each mark of a run counts to, so that the stages add up to its end-to-end time."""
    steps = "text_decoder_steps_s"
    stages = {
        "encoder": "speech_encoder_s" if task.speech_in else "text_encoder_s",
        "prefill": "text_decoder_prefill_s",
        "prefill_choice": "text_decoder_prefill_s",
        "reorder": "kv_reorder_s" if beam_search else steps,  # greedy: the reorder marks enclose nothing
        "decode": steps,
        "decode_choice": steps,
    }
    if task.speech_out:
        stages.update(text_to_unit="text_to_unit_s", vocoder="vocoder_s")
    return stages


def max_gen_len(lengths: Lengths) -> int:
    """The longest generation a workload can draw: the decoder's self-attention cache holds only
    the prefix and the generated tokens (the source sits in the cross-attention cache)."""
    factor = DISTRIBUTIONS[lengths.dist]["max_factor"] if lengths.dist else 1.0
    return math.ceil(lengths.gen_len * factor)


class SeamlessRunner(RunnerBase):
    """One SeamlessM4T v2 task (TASKS) with greedy or beam-search text decoding (case.beams)."""

    compare = staticmethod(compare)
    profiles = True  # run(..., annotate=True) marks each stage for the profiled iteration

    def __init__(self, case, model, device: str, seed: int) -> None:
        super().__init__(case, model, device, seed)
        self.task = TASKS[case.task]
        self.codes = codes(model)
        self.beams = case.beams or self.codes.num_beams
        self.dtype = next(model.parameters()).dtype
        config = model.config
        # Unit ids the vocoder has (after its offset), plus the t2u end-of-sequence id.
        allowed = torch.zeros(config.t2u_vocab_size, dtype=torch.bool)
        allowed[config.vocoder_offset : config.vocoder_offset + config.unit_hifi_gan_vocab_size] = True
        allowed[config.t2u_eos_token_id] = True
        self.allowed_units = allowed.to(device)

    def session(self, plan: Plan) -> SeamlessSession:
        rows = self.case.batch_size * self.beams
        return SeamlessSession(self.model, plan, rows, PREFIX_LEN + max_gen_len(self.case.lengths))

    # -- inputs --------------------------------------------------------------------------
    def _generator(self, length: int) -> torch.Generator:
        return input_generator(self.seed, length, self.case.batch_size)

    def _text_source(self, length: int) -> torch.Tensor:
        """[batch, length]: source language, seeded ordinary ids, end of sequence (NLLB's source form)."""
        batch = self.case.batch_size
        first_ordinary, languages = 4, 2  # after the specials; the language codes close the vocabulary
        last = self.model.config.vocab_size - languages
        ids = torch.randint(first_ordinary, last, (batch, length - 2), generator=self._generator(length))
        src = torch.full((batch, 1), self.codes.src_lang_id)
        eos = torch.full((batch, 1), self.codes.eos_id)
        return torch.cat([src, ids, eos], dim=1)

    def _speech_source(self, frames: int) -> torch.Tensor:
        features = self.model.config.feature_projection_input_dim
        return FEATURE_SIGMA * torch.randn((self.case.batch_size, frames, features), generator=self._generator(frames))

    def inputs(self, draw: tuple[int, int]) -> Prepared:
        prompt_len, gen_len = draw
        source = self._speech_source(prompt_len).to(self.dtype) if self.task.speech_in else self._text_source(prompt_len)
        rows = self.case.batch_size * self.beams
        prefix = torch.tensor([[self.codes.decoder_start_id, self.codes.tgt_lang_id]]).expand(rows, -1).contiguous()
        offsets = (torch.arange(self.case.batch_size) * self.beams).unsqueeze(1)
        return Prepared(source.to(self.device), prefix.to(self.device), offsets.to(self.device), gen_len)

    # -- the pipeline, inside the timed region ---------------------------------------------
    def encode(self, source: torch.Tensor) -> torch.Tensor:
        if self.task.speech_in:
            return self.model.speech_encoder(input_features=source).last_hidden_state
        return self.model.text_encoder(input_ids=source).last_hidden_state

    def choose(self, logits: torch.Tensor, scores: torch.Tensor | None, offsets: torch.Tensor):
        """(tokens [rows, 1], beam_idx [rows] or None, scores): greedy, or one beam-search step."""
        return choose(logits, scores, offsets, self.beams)

    def text_to_unit(self, sequences: torch.Tensor, encoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's second pass: decoder hidden states of the best sequence, characters of
        its subwords, the text-to-unit model; returns (units [batch, n], padding mask [batch, n])."""
        logits, padding = self.unit_logits(sequences, encoder)
        return logits.argmax(-1), padding

    def unit_logits(self, sequences: torch.Tensor, encoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """text_to_unit's scores before the choice: float32 [batch, n, t2u vocab], -inf where the
        vocoder has no unit, and the padding mask [batch, n]."""
        model, pad = self.model, self.codes.pad_id
        hidden = model.text_decoder(input_ids=sequences, encoder_hidden_states=encoder).last_hidden_state
        text_ids = sequences[:, PREFIX_LEN:].masked_fill(sequences[:, PREFIX_LEN:] == self.codes.eos_id, pad)
        subwords = model._indices_to_subwords(text_ids)
        char_counts = model._count_character_length_in_subword(text_ids, subwords, pad_token_id=pad)
        edge = char_counts.new_zeros((char_counts.shape[0], 1))  # language code and end of sequence: no characters
        char_counts = torch.cat([edge, char_counts, edge], dim=1)  # as the reference (NLLB source form)
        char_ids = model._get_char_input_ids(text_ids, subwords, char_counts, pad_token_id=pad)
        seq_lens = (sequences != pad).int().sum(1)
        mask = (torch.arange(hidden.shape[1], device=hidden.device) < seq_lens.unsqueeze(1)).to(hidden.dtype)
        out = model.t2u_model(inputs_embeds=hidden, char_input_ids=char_ids, char_count_per_id=char_counts, attention_mask=mask)
        return out[0].float().masked_fill(~self.allowed_units, float("-inf")), out[1].bool()

    def vocode(self, units: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        config = self.model.config
        pad = config.t2u_pad_token_id
        ids = units.masked_fill((units == config.t2u_eos_token_id) | ~padding, pad)
        ids = torch.where(ids == pad, ids, ids - config.vocoder_offset)
        rows = ids.shape[0]
        speaker = torch.full((rows, 1), SPEAKER_ID, device=ids.device)
        lang = torch.full((rows, 1), self.codes.vocoder_lang_id, device=ids.device)
        waveform, _ = self.model.vocoder(input_ids=ids, speaker_id=speaker, lang_id=lang)
        return waveform

    @torch.no_grad()
    def run(self, session: SeamlessSession, prepared: Prepared, annotate: bool = False) -> Output:
        """One translation. `annotate` (the profiled iteration only) marks each stage for the
        profiler; timed iterations never pay for it."""
        stages_of_marks = stage_names(self.task, self.beams > 1)
        bare = make_clock(self.device, clock_marks(prepared.gen_len - 1, self.task.speech_out))
        # The decoder step (wrapped by compile) first runs after prefill; the reset wraps the new cache.
        with stage_clock(bare, session, stages_of_marks, "prefill", annotate) as clock:
            session.reset()
            clock.start()
            encoder = self.encode(prepared.source)
            clock.mark("encoder")
            sequences = decode_text(session, encoder, prepared, clock, self.beams)
            units = None
            if self.task.speech_out:
                units, padding = self.text_to_unit(sequences, encoder)
                clock.mark("text_to_unit")
                waveform = self.vocode(units, padding)
                clock.mark("vocoder")
                units = units.masked_fill(~padding, self.model.config.t2u_pad_token_id)
            marks = clock.marks()
        metrics, stages = timings(marks, CHOICE_MARKS, stages_of_marks)
        text = sequences[:, PREFIX_LEN:]
        generated = {"text": text.shape[1]}
        if units is not None:
            generated.update(unit=units.shape[1], waveform_samples=waveform.shape[-1])
        value = Translation(text.cpu(), None if units is None else units.cpu())
        return Output(value=value, metrics=metrics, stages_s=stages, generated_tokens=generated)

    def near_tie(self, expected: Translation, got: Translation, draw: tuple[int, int], session) -> str | None:
        """Why reduced precision may legitimately change a translation: beam-search and unit
        near-ties on the baseline's own scores (harness/families/seamless/ties.py); None otherwise."""
        return beam_and_unit_ties(self, expected, got, draw, session)
