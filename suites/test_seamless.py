"""SeamlessM4T v2 (ss, st, ts, tt; greedy and beam search) over the matrix in harness/families.py."""

import pytest

from harness.runners.seamless import TASKS

pytestmark = pytest.mark.family("seamless")

SPEECH_STAGES = {"text_to_unit_s", "vocoder_s"}


def test_seamless(case, harness):
    result = harness(case)
    samples = result.samples
    generated = samples.get("generated_tokens", {})
    # Every timed iteration decoded exactly its drawn number of text tokens.
    assert generated.get("text", []) == samples.get("gen_lens", [])
    stages = set(samples.get("stages_s", {}))
    if stages:  # measured: each stage of the pipeline is timed
        assert {"encoder_s", "decoder_prefill_s", "decoder_steps_s"} <= stages
        assert (SPEECH_STAGES <= stages) == TASKS[case.task].speech_out
        assert ("kv_reorder_s" in stages) == (case.beams > 1)
