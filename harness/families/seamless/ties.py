"""Near-ties of SeamlessM4T v2's outputs: beam search's kept hypotheses, then text-to-unit's units.

In bfloat16 two stacks may legitimately produce different translations where rounding reorders
two choices whose scores are within rounding of each other. The rule is the decoder runner's
(harness.measure.equivalence.TIE_RELATIVE: each of two scores rounded once, relative to the
largest logit), carried over to beam search and judged on the baseline's own scores:

- text: both stacks' decoding is replayed outside timing, step by step, with the same calls as
  beam.decode_text (so the same numbers). At the first step where an input's kept hypotheses
  differ (later steps are not comparable any more), every hypothesis the baseline kept and the
  other stack dropped may outscore, under the baseline's scores, every one the other kept
  instead by at most the allowance: TIE_RELATIVE x the step's largest logit for two continuations
  of one beam (they share their history and the log-softmax normaliser: only two logits differ),
  2 x TIE_RELATIVE x the sum of each step's largest logit so far for hypotheses of different
  beams (every term of a sum of log-probabilities, logit and normaliser, rounds once per step).
  Greedy is one beam: the decoder runner's rule. With the same hypotheses at every step the best
  one may still differ: the same judgement of the two final scores.
- units (speech out, the same text): text-to-unit chooses every unit on its own, so every
  differing unit must be a tie of the baseline's unit logits (TIE_RELATIVE x the position's
  largest logit). Where the rounded durations differ, the first differing character's predicted
  duration must lie within rounding of the half-way point it was rounded across (a duration is
  round(expm1(x)): x rounded by TIE_RELATIVE x its largest value moves it by (1 + duration) x that).
The waveform is not compared: the vocoder is a function of the units.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from harness.families import family_spec
from harness.families.seamless.beam import beam_totals, choose, extend, initial_scores
from harness.families.seamless.unit_ties import same_row, unit_ties
from harness.levers.plan import plan_for
from harness.measure.equivalence import TIE_RELATIVE, worst_pair

Hypothesis = tuple[int, ...]


@dataclass
class BeamStep:
    """One step of a replayed decoding: what its choice ranked and what it kept."""

    totals: torch.Tensor  # [batch, beams, vocab] every continuation's score (beam.beam_totals)
    parents: torch.Tensor  # [rows, n] the hypotheses before the choice
    kept: torch.Tensor  # [rows, n + 1] the hypotheses after it
    kept_scores: torch.Tensor | None  # [batch, beams] their scores (None: greedy)
    largest: torch.Tensor  # [batch] the largest |logit| over each input's rows

    def hypotheses(self, which: str, index: int, beams: int) -> list[Hypothesis]:
        rows = getattr(self, which)[index * beams : (index + 1) * beams]
        return [tuple(row) for row in rows.tolist()]

    def score(self, index: int, beams: int, hypothesis: Hypothesis) -> float:
        """The baseline's score of a continuation of one of this step's parents (ValueError: of none)."""
        parent = self.hypotheses("parents", index, beams).index(hypothesis[:-1])
        return float(self.totals[index, parent, hypothesis[-1]])


@torch.no_grad()
def replay(runner, session, prepared) -> Iterator[BeamStep]:
    """The session's text decoding, one choice at a time, outside any timed region."""
    session.activate()
    session.reset()
    beams, batch = runner.beams, prepared.offsets.shape[0]
    encoder = runner.encode(prepared.source).repeat_interleave(beams, dim=0)
    logits = session.forward_step(prepared.prefix, encoder)
    sequences, scores = prepared.prefix, initial_scores(batch, beams, encoder.device)
    for step in range(prepared.gen_len):
        tokens, beam_idx, kept_scores = choose(logits, scores, prepared.offsets, beams)
        kept = extend(sequences, tokens, beam_idx)
        largest = logits.float().abs().view(batch, -1).amax(-1)
        yield BeamStep(beam_totals(logits, scores, beams), sequences, kept, kept_scores, largest)
        sequences, scores = kept, kept_scores
        if step + 1 < prepared.gen_len:
            if beam_idx is not None:
                session.reorder_fn(session.kv, beam_idx, prepared.prefix.shape[1] + step)
            logits = session.decode_step(tokens, encoder)


def best(step: BeamStep, index: int, beams: int) -> Hypothesis:
    """The input's best kept hypothesis after the last step (beam.decode_text's choice)."""
    kept = step.hypotheses("kept", index, beams)
    return kept[0] if step.kept_scores is None else kept[int(step.kept_scores[index].argmax())]


@dataclass(frozen=True)
class Allowance:
    relative: float  # TIE_RELATIVE of the dtype
    largest: float  # this step's largest logit of the input
    spent: float  # the sum of every step's largest logit so far

    def of(self, one: Hypothesis, other: Hypothesis) -> float:
        return self.relative * (self.largest if one[:-1] == other[:-1] else 2 * self.spent)


def swapped_pairs(step: BeamStep, index: int, beams: int, theirs: list[Hypothesis], allowance: Allowance) -> str | None:
    """Why the baseline kept other hypotheses than `theirs` at this step: every pair of one it
    kept alone and one the other stack kept alone is within the allowance (the worst pair's
    figures); None when a pair has a clear gap."""
    mine = step.hypotheses("kept", index, beams)
    pairs = []
    for high in (h for h in mine if h not in theirs):
        for low in (h for h in theirs if h not in mine):
            try:
                gap = step.score(index, beams, high) - step.score(index, beams, low)
            except ValueError:  # the other stack's hypothesis extends no beam the baseline had
                return None
            pairs.append((gap, allowance.of(high, low)))
    return worst_pair(pairs) if all(abs(gap) <= allowed for gap, allowed in pairs) else None


def final_pair(step: BeamStep, index: int, beams: int, theirs: Hypothesis, allowance: Allowance) -> str | None:
    """The same hypotheses were kept throughout, but another one was best: its final score and the
    baseline's best's are within the allowance."""
    mine = best(step, index, beams)
    kept = step.hypotheses("kept", index, beams)
    if step.kept_scores is None or theirs not in kept:
        return None
    scores = step.kept_scores[index]
    gap, allowed = float(scores[kept.index(mine)] - scores[kept.index(theirs)]), allowance.of(mine, theirs)
    return f"gap {gap:.3g} <= {allowed:.3g}" if abs(gap) <= allowed else None


def text_ties(runner, baseline, session, prepared, wanted: dict[int, tuple[Hypothesis, Hypothesis]]) -> dict[int, str] | None:
    """Each input's divergence as a note; None when one is no tie, or when a replay does not end in
    its run's best hypothesis (wanted: input -> the baseline's and the other stack's, prefix included)."""
    beams, relative = runner.beams, TIE_RELATIVE[runner.case.dtype]
    theirs = list(replay(runner, session, prepared))
    notes: dict[int, str] = {}
    spent = torch.zeros(len(prepared.offsets))
    for index, step in enumerate(replay(runner, baseline, prepared)):
        spent += step.largest.cpu()
        for row in (row for row in wanted if row not in notes):
            other = theirs[index].hypotheses("kept", row, beams)
            if set(other) == set(step.hypotheses("kept", row, beams)):
                continue
            found = swapped_pairs(step, row, beams, other, Allowance(relative, float(step.largest[row]), float(spent[row])))
            if found is None:
                return None
            notes[row] = f"input {row}: beams differ from step {index}, a near-tie: {found}"
        last = step
    if any((best(last, row, beams), best(theirs[-1], row, beams)) != pair for row, pair in wanted.items()):
        return None
    for row in (row for row in wanted if row not in notes):
        found = final_pair(last, row, beams, wanted[row][1], Allowance(relative, float(last.largest[row]), float(spent[row])))
        if found is None:
            return None
        notes[row] = f"input {row}: another best of the same beams, a near-tie: {found}"
    return notes


def near_tie(runner, expected, got, draw: tuple[int, int], session) -> str | None:
    """Why the two translations may differ (module docstring): a note per input that differs;
    None when any difference is no tie."""
    prepared = runner.inputs(draw)
    baseline = runner.session(plan_for(family_spec(runner.case.family).baseline))
    prefix = tuple(prepared.prefix[0].tolist())
    rows = range(expected.text.shape[0])
    wanted = {row: (prefix + tuple(expected.text[row].tolist()), prefix + tuple(got.text[row].tolist())) for row in rows}
    texts = {row: pair for row, pair in wanted.items() if pair[0] != pair[1]}
    notes = text_ties(runner, baseline, session, prepared, texts) if texts else {}
    if notes is None:
        return None
    pad = runner.model.config.t2u_pad_token_id
    units = [row for row in rows if row not in texts and expected.units is not None and not same_row(expected.units, got.units, row, pad)]
    if units:
        found = unit_ties(runner, baseline, session, prepared, (expected, got), units)
        if found is None:
            return None
        notes.update(found)
    return "; ".join(notes[row] for row in sorted(notes)) or None
