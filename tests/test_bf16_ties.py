"""bfloat16 output checks on the CPU for every family: the baseline stack against the family's first
lever on the real tiny models passes (equal outputs or a recorded near-tie), and a planted divergence
where the baseline's scores have a clear gap is still a mismatch, for every near-tie rule."""

import dataclasses

import pytest
import torch

from harness.families.chameleon.model import vocab_layout
from harness.families.chameleon.runner import REFERENCE_GUIDANCE, cfg_combine, cfg_gain
from harness.families.hstu.runner import SCORE_ATOL, Scored, first_score_mismatch
from harness.families.seamless.unit_ties import UnitPass, duration_tie, units_tie
from harness.levers import LEVERS, Lever
from harness.measure.case import RunContext
from harness.measure.equivalence import TIE_RELATIVE, Mismatch, greedy_ties
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.spec.matrix import Case
from harness.spec.workload import Lengths

PLANT_AT_CALL = 3  # the decode step whose choice the planted levers move to a clearly worse token


@pytest.fixture(scope="module")
def bf16_ctx():
    """One context for the module: each family's bf16 model is built once and each baseline run once."""
    # quick_tokens above every case's gen_len: the quick check generates the whole case
    return RunContext(RunOptions(warmup=0, iterations=1, quick_tokens=64, contention_ratio=0), "cpu")


def bf16(family, task, batch, lengths, stack, **fields):
    return Case(family, task, "tiny", "bfloat16", batch, lengths, stack, **fields)


# Each diverges from eager on this machine's CPU kernels (seen here: llama rows 0 and 2, Chameleon tt at token 22,
# ti at token 35 through guidance, Seamless ts beams at step 4, ss batch 2's units of input 1), so each
# exercises its rule; equal outputs would pass as well.
AGREEING = [
    bf16("llama", "tt", 4, Lengths(32, 16), ("sdpa",)),
    bf16("chameleon", "tt", 2, Lengths(16, 24), ("sdpa",)),
    bf16("chameleon", "ti", 1, Lengths(16, 40), ("sdpa",)),
    bf16("seamless", "ts", 1, Lengths(16, 12), ("sdpa",), beams=4),
    bf16("seamless", "ss", 2, Lengths(64, 12), ("sdpa",), beams=4),
    bf16("hstu", "rank", 8, Lengths(32, 16, dist="longtail"), ("jagged",), items=20_000),
]


@pytest.mark.parametrize("cell", AGREEING, ids=lambda cell: cell.id)
def test_bf16_first_lever_agrees_with_the_baseline_or_ties(cell, bf16_ctx):
    """In bfloat16 the family's first lever passes its output check against the baseline: equal outputs, or
    a divergence the near-tie rule explains and records."""
    result = execute(cell, bf16_ctx, measure=False)
    assert result.status == "ok", result.message
    assert result.outputs_match is True
    assert result.equivalence_note == "" or "near-tie" in result.equivalence_note


# -- planted divergences at clear gaps --------------------------------------------------------------
class ClearlyWorseToken:
    """A decoder step (the decoder runner's: it returns the greedy token) that picks the baseline's
    least likely token at one call: the gap to the greedy token is the whole logit range."""

    def __init__(self, step, session) -> None:
        self.session, self.calls = session, 0

    def __call__(self, input_ids, position_ids):
        logits = self.session.step_logits(input_ids, position_ids)
        self.calls += 1
        return (logits.argmin if self.calls == PLANT_AT_CALL else logits.argmax)(-1, keepdim=True)


class BoostedWorstLogit:
    """A step that returns logits (Chameleon, Seamless): at one call the worst-scored candidate of
    the first row (for Chameleon's guided image choice: the worst after guidance, in every stream)
    gets a logit far above the rest, so the choice moves where the baseline's gap is clear."""

    def __init__(self, step, session) -> None:
        self.step, self.session, self.calls = step, session, 0

    def __call__(self, *args):
        logits = self.step(*args)
        self.calls += 1
        if self.calls != PLANT_AT_CALL:
            return logits
        worst = int(self.scores(logits).argmin())
        rows = slice(None) if self.guided(logits) else slice(0, 1)
        logits = logits.clone()
        logits[rows, worst] = logits.abs().max() * 100
        return logits

    def guided(self, logits) -> bool:
        return self.session.model.config.model_type == "chameleon" and logits.shape[0] == REFERENCE_GUIDANCE.streams

    def scores(self, logits):
        if self.session.model.config.model_type != "chameleon":
            return logits[0].float()
        image = vocab_layout(self.session.model.config).image_mask(logits.device)
        if self.guided(logits):
            return cfg_combine(logits.float(), REFERENCE_GUIDANCE)[0].masked_fill(~image, float("inf"))
        return logits[0].float().masked_fill(image, float("inf"))  # text: the worst text token


def planted(factory):
    return Lever(
        name="planted", slot="planted", summary="moves one choice to a clearly worse candidate (test only)",
        configure=lambda plan: dataclasses.replace(plan, step_wrappers=plan.step_wrappers + (("planted", factory),)),
        evidence=lambda session: {},
    )


PLANTED = [
    (bf16("llama", "tt", 2, Lengths(16, 8), ("sdpa", "planted")), ClearlyWorseToken),
    (bf16("chameleon", "tt", 1, Lengths(16, 8), ("sdpa", "planted")), BoostedWorstLogit),
    (bf16("chameleon", "ti", 1, Lengths(16, 8), ("sdpa", "planted")), BoostedWorstLogit),
    (bf16("seamless", "tt", 1, Lengths(16, 8), ("sdpa", "planted")), BoostedWorstLogit),  # greedy
    (bf16("seamless", "tt", 1, Lengths(16, 8), ("sdpa", "planted"), beams=4), BoostedWorstLogit),
]


@pytest.mark.parametrize(("cell", "factory"), PLANTED, ids=[cell.id for cell, _ in PLANTED])
def test_a_planted_divergence_at_a_clear_gap_is_still_a_mismatch(cell, factory, bf16_ctx):
    """A lever that moves one bfloat16 choice to a candidate the baseline scores far below its own fails the
    case as a mismatch, with no near-tie note: every rule rejects a clear gap."""
    with LEVERS.temporarily(planted(factory)):
        result = execute(cell, bf16_ctx, measure=False)
    assert result.status == "mismatch", (result.status, result.equivalence_note)
    assert result.outputs_match is False and result.equivalence_note == ""


# -- the rules by hand ------------------------------------------------------------------------------
def test_greedy_ties_take_the_allowance_at_the_first_divergence_only():
    """A first divergence within the allowance is a tie, one just beyond it or to a missing token is not."""
    scores = torch.tensor([[[1.0, 0.996, -2.0], [0.0, 0.0, 0.0]]])  # [batch, positions, vocab]
    allowed = TIE_RELATIVE["bfloat16"] * scores.abs().amax(-1)  # 2^-7 x 1.0 = 0.0078 at position 0
    assert greedy_ties([Mismatch(0, 0, 0, 1)], scores, allowed)[0].gap == pytest.approx(0.004, rel=1e-4)
    assert greedy_ties([Mismatch(0, 0, 0, 2)], scores, allowed) is None  # gap 3.0: clear
    assert greedy_ties([Mismatch(0, 0, 0, None)], scores, allowed) is None


def test_guidance_gain_is_the_sum_of_its_coefficients():
    """Guidance grows each stream's rounding by |1 - s_img| + |s_img - s_txt| + |s_txt|: 5 for the reference's
    scales, 1 without guidance."""
    assert cfg_gain(REFERENCE_GUIDANCE) == pytest.approx(0.2 + 1.8 + 3.0)
    assert cfg_gain(None) == 1.0


def unit_pass(log_durations, logits):
    chars, units = len(log_durations), len(logits)
    return UnitPass(torch.tensor([log_durations]), torch.ones(1, chars, dtype=torch.bool),
                    torch.tensor([logits]), torch.ones(1, units, dtype=torch.bool))


def test_units_tie_only_within_the_baseline_logits_rounding():
    """Units that differ are near-ties only where the baseline's two unit logits are within 2^-7 of the
    position's largest logit."""
    baseline = unit_pass([0.0], [[1.0, 0.995, 0.2], [1.0, 0.2, 0.1]])
    close, clear = unit_pass([0.0], [[0.99, 1.0, 0.2], [1.0, 0.2, 0.1]]), unit_pass([0.0], [[0.2, 0.1, 1.0], [1.0, 0.2, 0.1]])
    assert "near-ties" in units_tie(baseline, close, 0, TIE_RELATIVE["bfloat16"])
    assert units_tie(baseline, clear, 0, TIE_RELATIVE["bfloat16"]) is None


def test_durations_tie_only_next_to_the_half_way_point():
    """A rounded duration that differs by one is a near-tie only where the baseline's duration lies within
    rounding of the half-way point; one far from it, or two apart, is not."""
    units = [[1.0, 0.0]]
    near_half = unit_pass([1.25276, 0.5], units)  # expm1 = 2.49995: rounds to 2
    baseline_far = unit_pass([1.0986, 0.5], units)  # expm1 = 2.0000
    three, four = unit_pass([1.2528, 0.5], units), unit_pass([1.6094, 0.5], units)  # expm1 2.5001 and 4.0: rounded to 3 and 4
    relative = TIE_RELATIVE["bfloat16"]
    assert "a near-tie" in duration_tie(near_half, unit_pass([1.2530, 0.5], units), 0, relative)
    assert duration_tie(baseline_far, three, 0, relative) is None
    assert duration_tie(near_half, four, 0, relative) is None


def test_hstu_bf16_tolerance_is_eight_unit_roundoffs():
    """HSTU's bfloat16 score tolerance is 8 x 2^-8: a score off by less passes; one off by more, or items that
    swapped places with scores that are not their own, is a mismatch."""
    atol = SCORE_ATOL["bfloat16"]
    assert atol == 2.0**-5
    ids = torch.tensor([[7, 3]])
    expected = Scored(ids, torch.tensor([[0.5, 0.25]]))
    assert first_score_mismatch(expected, Scored(ids, expected.scores + 0.9 * atol), atol) is None
    assert first_score_mismatch(expected, Scored(ids, expected.scores + 1.1 * atol), atol) is not None
    swapped = Scored(torch.tensor([[3, 7]]), torch.tensor([[0.5, 0.25]]))
    assert first_score_mismatch(expected, swapped, atol) is not None
