import re

import pytest
from hypothesis import given

from harness.errors import HarnessError
from harness.families import DECODER_STACKS, FAMILIES, SPECULATIVE_STACKS
from harness.levers import LEVERS, Lever, unavailable_reason
from harness.options import RunOptions
from harness.spec.matrix import Case, expand, fingerprint
from harness.spec.selection import select
from harness.spec.workload import Lengths
from tests.strategies import cases

LLAMA = FAMILIES["llama"]
PARAMS = {"draft_len": 4, "exit_layer": 2, "max_ngram": 3}  # the speculative levers' parameters


DECODER_NAMES = tuple("+".join(stack) for stack in DECODER_STACKS)


def test_cpu_expansion_drops_cuda_graphs_with_reason():
    """On CPU every cudagraphs stack is dropped with the reason that it needs a CUDA device, and the other
    decoder stacks are kept."""
    cases_, dropped = expand(LLAMA, "tiny", ("float32",), "cpu", only_stacks=DECODER_NAMES, lever_params=PARAMS)
    full = [w for w in LLAMA.workloads["tiny"] if not w.stacks]  # the others run their own few stacks
    own = sum(sum("+".join(s) in DECODER_NAMES for s in w.stacks) for w in LLAMA.workloads["tiny"] if w.stacks)
    assert len(cases_) == 5 * len(full) + own
    assert len(dropped) == 2 * len(full)
    assert all("cudagraphs" in cell.case_id for cell in dropped)
    assert all(cell.reason == "cudagraphs needs a cuda device (this run: cpu)" for cell in dropped)
    assert not any("cudagraphs" in case.stack for case in cases_)


def test_cuda_expansion_keeps_every_declared_stack():
    """On CUDA every declared decoder and speculative stack of llama is kept and nothing is dropped."""
    # Decoder and speculative stacks all run on CUDA (quantization drops by dtype/API: tests/test_quantization.py).
    names = DECODER_NAMES + tuple("+".join(stack) for stack in SPECULATIVE_STACKS)
    cases_, dropped = expand(LLAMA, "tiny", ("bfloat16",), "cuda:0", only_stacks=names, lever_params=PARAMS)
    assert dropped == []
    assert {case.stack for case in cases_} == set(DECODER_STACKS) | set(SPECULATIVE_STACKS)


def test_ids_are_readable_unique_and_stable():
    """Case ids are unique and readable, made of lower-case letters, digits and '+.-', and a stack whose lever
    parameter has no value is refused."""
    cases_, _ = expand(LLAMA, "tiny", ("float32", "bfloat16"), "cpu", lever_params=PARAMS)
    ids = [case.id for case in cases_]
    assert len(ids) == len(set(ids))
    assert "llama-tt-tiny-b1-p128-g64-fp32-sdpa+static+compile" in ids
    assert "llama-tt-tiny-b1-lognormal-p64-g32-bf16-eager" in ids
    for case_id in ids:
        assert re.fullmatch(r"[a-z0-9+.-]+", case_id), case_id
    with pytest.raises(ValueError, match="no value for lever parameter"):
        expand(LLAMA, "tiny", ("float32",), "cpu", only_stacks=("sdpa+selfspec",))


def test_stack_filter_is_exact():
    """The stack filter keeps exactly the named stack, not the stacks that contain it."""
    cases_, _ = expand(LLAMA, "tiny", ("float32",), "cpu", only_stacks=("sdpa",))
    assert {case.stack_name for case in cases_} == {"sdpa"}


def test_unknown_preset_names_allowed_values():
    """An unknown preset is refused, naming the allowed presets."""
    with pytest.raises(HarnessError, match="unknown preset for llama 'huge'; allowed: paper, paper-7b, small, tiny"):
        expand(LLAMA, "huge", ("float32",), "cpu")


def test_unknown_lever_fails_loudly():
    """An unknown lever is refused, naming the allowed levers."""
    with pytest.raises(HarnessError, match="unknown lever 'flash'; allowed: .*sdpa"):
        unavailable_reason(("flash",), FAMILIES["llama"], "cpu")


@pytest.mark.parametrize(
    "stack, reason",
    [
        (("eager", "sdpa"), "sdpa and eager both set the attention"),
        (("sdpa", "cudagraphs"), "cudagraphs needs static earlier in the stack"),
        (("sdpa", "static"), ""),
    ],
)
def test_structural_reasons(stack, reason):
    """A stack with two levers in one slot or a missing prerequisite has that as its reason, and a sound stack
    has none."""
    assert unavailable_reason(stack, FAMILIES["llama"], "cuda") == reason


def test_family_restriction_is_a_reason():
    """A lever needing a capability some families lack is unavailable to the others, saying so, and is gone once its
    temporary registration ends."""
    planted = Lever("llamaonly", "x", "test", configure=lambda p: p, evidence=lambda s: {}, needs=frozenset({"speculative_loop"}))
    with LEVERS.temporarily(planted):
        assert unavailable_reason(("llamaonly",), FAMILIES["hstu"], "cpu") == "llamaonly does not apply to hstu"
    with pytest.raises(HarnessError):
        LEVERS.get("llamaonly")


@given(cases)
def test_case_round_trips_through_dict(case):
    """A case round-trips through its dict."""
    assert Case.from_dict(case.to_dict()) == case


@given(cases)
def test_fingerprint_depends_on_definition_and_model(case):
    """The fingerprint is the same for an equal case and model config and changes with the model config."""
    model = {"hidden_size": 128}
    assert fingerprint(case, model) == fingerprint(Case.from_dict(case.to_dict()), dict(model))
    assert fingerprint(case, model) != fingerprint(case, {"hidden_size": 256})


def test_fingerprint_changes_with_lengths():
    """The fingerprint changes when the generated length does."""
    case = Case("llama", "tt", "tiny", "float32", 1, Lengths(128, 64), ("eager",))
    other = Case("llama", "tt", "tiny", "float32", 1, Lengths(128, 65), ("eager",))
    assert fingerprint(case, {}) != fingerprint(other, {})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"preset": "huge"}, "unknown preset for llama 'huge'"),
        ({"device": "tpu"}, "unknown device 'tpu'; allowed: auto, cpu, cuda, cuda:N"),
        ({"device": "cuda"}, "torch sees no CUDA device"),
        ({"dtype": "float8"}, "unknown dtype 'float8'; allowed: bfloat16, float16, float32"),
        ({"families": "gpt"}, "unknown family 'gpt'; allowed: chameleon, hstu, llama"),
        ({"stacks": "sdpa+turbo"}, "unknown lever 'turbo'"),
        ({"stacks": "static+sdpa"}, "unknown stack 'static\\+sdpa'"),
        ({"iterations": 0}, "--iterations must be at least 1"),
        ({"iterations": 12, "rounds": 5}, "--rounds 5 must be 0 \\(one per iteration\\) or divide --iterations 12"),
        ({"rounds": -1}, "--rounds -1 must be 0"),
        ({"contention_ratio": 0.9}, "--contention-ratio must be 0 \\(off\\) or above 1, got 0.9"),
        ({"contention_ratio": float("nan")}, "--contention-ratio must be 0 \\(off\\) or above 1, got nan"),
    ],
)
def test_bad_options_give_one_clear_line(changes, message):
    """Each bad option is refused with a single line saying what is wrong."""
    with pytest.raises(HarnessError, match=message) as info:
        select(RunOptions(**changes), cuda_available=False)
    assert "\n" not in str(info.value)


def test_auto_device_and_dtype():
    """The automatic device and dtype are cpu and float32 without CUDA, cuda and bfloat16 with it."""
    assert select(RunOptions(), cuda_available=False).dtypes == ("float32",)
    chosen = select(RunOptions(), cuda_available=True)
    assert (chosen.device, chosen.dtypes) == ("cuda", ("bfloat16",))
