"""Each staged runner's profiled iteration on a tiny case (CPU): exactly the family's stages, each with categories
and an idle share, accounted for against the iteration's own clock; Chameleon's ti within its stated window."""

import dataclasses

import pytest

from harness.measure.case import CaseRun, RunContext
from harness.measure.profile.analysis import profile_problems
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.spec.selection import select

# case id fragment -> the stages its profile must have, exactly
STAGES = {
    ("chameleon", "it-tiny"): {"vq_encode", "prefill", "text_decode"},
    ("seamless", "ss-tiny-b1-lognormal-p64-g16-beam4"): {
        "speech_encoder", "text_decoder_prefill", "kv_reorder", "text_decoder_steps", "text_to_unit", "vocoder"},
    ("seamless", "tt-tiny-b1-p16-g16-greedy"): {"text_encoder", "text_decoder_prefill", "text_decoder_steps"},
    ("hstu", "rank-tiny-b8-longtail-p32-g16-i20000-fp32-padded"): {"embedding", "encoder", "score"},
    ("hstu", "retrieve-tiny-b8-longtail-p32-g16-i20000-fp32-jagged"): {"embedding", "encoder", "topk"},
}


def tiny_case(family: str, fragment: str, options: RunOptions):
    selection = select(options, False)
    cases, _ = selection.expand(family)
    (case,) = [case for case in cases if fragment in case.id and case.stack_name in ("sdpa", "padded", "jagged")]
    return case, selection.options


@pytest.mark.parametrize("family, fragment", list(STAGES), ids=[f"{f}-{c}" for f, c in STAGES])
def test_profiled_iteration_splits_by_the_family_stages(family, fragment, tmp_path):
    """A tiny case's profiled iteration has exactly its family's stages, each with categories and an idle share in
    [0, 1], and categories plus idle account for each stage's clock time within 5%."""
    options = RunOptions(stacks="sdpa,padded,jagged", quick_tokens=4, trace_dir=str(tmp_path))
    case, options = tiny_case(family, fragment, options)
    record = execute(case, RunContext(options, "cpu"), False).to_record()
    assert record["status"] == "ok", record["message"]
    assert set(record["breakdown"]) == set(record["profile_clock_s"]) == STAGES[(family, fragment)]
    assert record["profile_window"] == {} and profile_problems(record) == []
    assert (tmp_path / (record["id"] + ".json")).exists()


def test_text_to_image_profiles_its_first_tokens_and_says_so():
    """A ti case's profiled iteration decodes only the first tokens of its 256-token image, says so in the record,
    and splits them into prefill, guidance and image decode."""
    options = RunOptions(stacks="sdpa", quick_tokens=4)
    case, options = tiny_case("chameleon", "ti-tiny", options)
    case = dataclasses.replace(case, stack=("sdpa",))
    run = CaseRun(case, RunContext(options, "cpu"))
    assert run.check((case.lengths.prompt_len, 4))
    run.profile(run.draws[0])
    record = run.result.to_record()
    window = record["profile_window"]
    assert window == {"generated_tokens": 32, "of_generated_tokens": 256, "steps": "first"}
    assert set(record["breakdown"]) == {"prefill", "cfg", "image_decode"} and profile_problems(record) == []
    assert record["top_ops"]["sampling"][0][0] == "aten::argmax"  # the guided choice, once per token
