"""Output equivalence, including a planted lever that changes the answer and must fail."""

import dataclasses

import torch

from harness.levers import LEVERS, Lever
from harness.measure.equivalence import first_mismatch
from harness.measure.workload import execute
from harness.spec.matrix import Case
from harness.spec.workload import Lengths

WRONG_AT_STEP = 3  # decode step whose token the planted lever corrupts


def test_first_mismatch_finds_row_and_position():
    """The first mismatch between two token tensors names its batch row, position and both tokens, and equal
    tensors have none."""
    expected = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert first_mismatch(expected, expected.clone()) is None
    got = expected.clone()
    got[1, 2] = 9
    found = first_mismatch(expected, got)
    assert (found.row, found.position, found.expected, found.got) == (1, 2, 6, 9)
    assert "batch row 1, token 2: expected 6, got 9" in found.describe()


def test_first_mismatch_on_different_lengths():
    """When one output is shorter, the first mismatch lies where it ends, with no token got."""
    found = first_mismatch(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2]]))
    assert (found.position, found.expected, found.got) == (2, 3, None)


class CorruptingStep:
    """Returns a wrong token at one decode step: a lever that changes the answer."""

    def __init__(self, step, session) -> None:
        self._step = step
        self.calls = 0

    def __call__(self, *args):
        token = self._step(*args)
        self.calls += 1
        return (token + 1) % 1024 if self.calls == WRONG_AT_STEP else token


PLANTED = Lever(
    name="planted",
    slot="planted",
    summary="corrupts one token (test only)",
    configure=lambda plan: dataclasses.replace(plan, step_wrappers=plan.step_wrappers + (("planted", CorruptingStep),)),
    evidence=lambda session: {"calls": session.wrappers["planted"].calls},
)


def tiny_case(stack):
    return Case("llama", "tt", "tiny", "float32", 2, Lengths(16, 8), stack)


def test_planted_mismatch_fails_with_first_position(ctx_factory):
    """A lever that changes one token fails the case as a mismatch naming the first differing row and token,
    and the case is not measured."""
    ctx = ctx_factory()
    with LEVERS.temporarily(PLANTED):
        result = execute(tiny_case(("sdpa", "planted")), ctx, measure=True)
    assert result.status == "mismatch"
    assert result.outputs_match is False
    # token 0 comes from prefill; decode step k produces token k
    assert f"token {WRONG_AT_STEP}" in result.message and "batch row 0" in result.message
    assert result.samples.get("e2e_s") is None, "a case whose answer changed must not be measured"


def test_matching_case_is_measured_with_evidence(ctx_factory):
    """A case whose outputs match is measured for every iteration and token and records each lever's evidence."""
    ctx = ctx_factory()
    result = execute(tiny_case(("sdpa", "static")), ctx, measure=True)
    assert result.status == "ok", result.message
    assert result.outputs_match is True
    assert len(result.samples["e2e_s"]) == 3 and len(result.samples["ttft_s"]) == 3
    assert len(result.samples["tpot_s"]) == 3 * 7
    assert set(result.evidence) == {"sdpa", "static"}
    record = result.to_record()
    assert record["evidence"]["static"]["cache_class"] == "StaticCache"


def test_quick_check_generates_quick_tokens_only(ctx_factory):
    """The quick check generates only quick_tokens tokens, measures nothing, and keeps the reference under its
    workload and lengths."""
    ctx = ctx_factory(quick_tokens=4)
    result = execute(tiny_case(("sdpa",)), ctx, measure=False)
    assert result.status == "ok" and result.outputs_match
    assert "e2e_s" not in result.samples
    assert list(ctx.references) == [("llama-tt-tiny-b2-p16-g8-fp32", 16, 4)]


def test_a_raising_case_is_recorded_as_an_error(ctx_factory):
    """A case that raises is recorded as an error with the exception's message and keeps the samples measured
    before it."""
    def explode(session):
        raise RuntimeError("planted failure")

    broken = Lever("broken", "broken", "raises", configure=lambda plan: plan, evidence=explode)
    with LEVERS.temporarily(broken):
        result = execute(tiny_case(("sdpa", "broken")), ctx_factory(), measure=True)
    assert result.status == "error"
    assert result.message == "RuntimeError: planted failure"
    assert result.samples["e2e_s"], "samples measured before the failure are kept"


def test_near_tie_accepts_only_divergences_within_rounding(ctx_factory):
    """The plumbing of the near-tie rule: a planted divergence is a tie only when the allowed
    gap covers it, and the record says so."""
    from harness.families.decoder import DecoderRunner

    ctx = ctx_factory()
    with LEVERS.temporarily(PLANTED):
        strict = execute(tiny_case(("sdpa", "planted")), ctx, measure=False)
        assert strict.status == "mismatch"
        lenient = dict(DecoderRunner.tie_relative, float32=1e9)
        original = DecoderRunner.tie_relative
        DecoderRunner.tie_relative = lenient
        try:
            accepted = execute(tiny_case(("sdpa", "planted")), ctx, measure=False)
        finally:
            DecoderRunner.tie_relative = original
    assert accepted.status == "ok" and accepted.outputs_match
    note = accepted.to_record()["equivalence_note"]
    assert "row 0 diverges at token 3" in note and "row 1 diverges at token 3" in note and "a near-tie" in note


def test_runners_without_phase_marks_are_measured_unprofiled(ctx_factory):
    """A runner that cannot mark phases still measures; the record says why it has no profile."""
    from harness.families.decoder import DecoderRunner

    DecoderRunner.profiles = False
    try:
        result = execute(tiny_case(("sdpa",)), ctx_factory(), measure=True)
    finally:
        DecoderRunner.profiles = True
    assert result.status == "ok", result.message
    record = result.to_record()
    assert record["breakdown"] == {} and record["e2e_s"]
    assert record["profile_notes"] == ["DecoderRunner has no profiled iteration yet"]
