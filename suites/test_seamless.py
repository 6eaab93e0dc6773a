"""SeamlessM4T v2 (ss, st, ts, tt; greedy and beam search) over the matrix its spec declares (harness/families/seamless/)."""

import pytest

from harness.families.seamless.runner import TASKS
from harness.measure.profile.analysis import profile_problems

pytestmark = pytest.mark.family("seamless")

SPEECH_STAGES = {"text_to_unit_s", "vocoder_s"}


def test_seamless(case, harness):
    """Each SeamlessM4T case of the matrix decodes exactly its drawn number of text tokens and, when measured,
    times and profiles every stage its task and beams have, the profile accounting for each stage's time."""
    result = harness(case)
    samples = result.samples
    generated = samples.get("generated_tokens", {})
    # Every timed iteration decoded exactly its drawn number of text tokens.
    assert generated.get("text", []) == samples.get("gen_lens", [])
    stages = set(samples.get("stages_s", {}))
    if stages:  # measured: each stage of the pipeline is timed
        encoder = "speech_encoder_s" if TASKS[case.task].speech_in else "text_encoder_s"
        assert {encoder, "text_decoder_prefill_s", "text_decoder_steps_s"} <= stages
        assert (SPEECH_STAGES <= stages) == TASKS[case.task].speech_out
        assert ("kv_reorder_s" in stages) == (case.beams > 1)
    problems = profile_problems(result.to_record())
    assert not problems, problems


BENCH_PAIRS, QUICK_PAIRS, QUICK_TOKENS = 8, 1, 4
REORDER_BEAMS = 4


def test_inplace_reorder_speedup(harness_experiment):
    """The reorder lever's speed-up at 4 beams (ss), in interleaved pairs within one run."""
    from dataclasses import replace

    from harness.families import FAMILIES
    from harness.families.seamless.reorder_speedup import measure_reorder_speedup

    experiment = harness_experiment("seamless")
    selection, options = experiment.selection, experiment.options
    (workload,) = [w for w in FAMILIES["seamless"].workloads[options.preset] if w.tasks == ("ss",) and w.beams > 1]
    cases, _ = selection.expand("seamless")
    (case,) = [c for c in cases if c.task == "ss" and c.beams == workload.beams and c.stack == ("sdpa", "static")] or [None]
    if case is None:
        pytest.skip("sdpa+static is not selected (--stacks)")
    case = replace(case, beams=REORDER_BEAMS)
    gen_len = workload.lengths.gen_len if experiment.benchmarking else QUICK_TOKENS
    draw = (workload.lengths.prompt_len, gen_len)
    model, pairs = experiment.model(), experiment.pairs(BENCH_PAIRS, QUICK_PAIRS)
    found = experiment.measure(lambda: measure_reorder_speedup(model, experiment.device, options.seed, case, draw, pairs))
    assert found["outputs_match"]
    experiment.record(found, (
        f"seamless in-place reorder at {REORDER_BEAMS} beams: e2e {found['speedup_e2e_s']:.2f}x, "
        f"reorder stage {found['speedup_kv_reorder_s']:.2f}x vs index_select "
        f"({options.preset} ss p{draw[0]} g{draw[1]}, sdpa+static, {pairs} interleaved pairs)"
    ))
