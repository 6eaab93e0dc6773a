"""The harness's own cost: its TTFT and TPOT against a bare loop of the same forwards, for every family
with a decoder, and for Llama against transformers' generate() too (harness/measure/overhead.py).

A benchmark, not a timed test: the ratios are measured in one run, interleaved, and reported (the run's
notes, --benchmark-json's extra_info, the results file), never asserted against wall-clock limits.
Without --benchmark it checks, in a couple of rounds, that the loops run the same forwards (the same
tokens) and are deterministic. The Llama model is the run's: its preset, or --checkpoint-dir.
"""

import pytest

from harness.measure.overhead import DECODER_FAMILIES, SUBJECTS, measure_overhead, overhead_case, summary_line
from harness.spec.workload import Lengths

BENCH_LENGTHS, QUICK_LENGTHS = Lengths(128, 64), Lengths(32, 8)  # batch 1; issue 20's Llama measurement
BENCH_ROUNDS, QUICK_ROUNDS = 30, 2
# Llama over the three stacks of issue 20's table (the attention implementation and the cache kind are what
# the loops share); the other families with sdpa.
STACKS = {"llama": (("eager",), ("sdpa",), ("sdpa", "static"))}
CELLS = [(family, stack) for family in DECODER_FAMILIES for stack in STACKS.get(family, (("sdpa",),))]


@pytest.mark.parametrize(("family", "stack"), CELLS, ids=[f"{family}-{'+'.join(stack)}" for family, stack in CELLS])
def test_timing_overhead(harness_experiment, family, stack):
    """The harness's loop and a bare loop of the same forwards (and for Llama, generate()) produce the same
    greedy tokens, deterministically, and their TTFT and TPOT ratios are reported under --benchmark."""
    experiment = harness_experiment(family)
    options = experiment.options
    lengths = BENCH_LENGTHS if experiment.benchmarking else QUICK_LENGTHS
    case = overhead_case(family, options.preset, experiment.selection.dtypes[0], lengths, stack)
    subject = SUBJECTS[family](experiment.model(), experiment.device, options.seed, case)
    rounds = experiment.pairs(BENCH_ROUNDS, QUICK_ROUNDS)
    found = experiment.measure(lambda: measure_overhead(subject, rounds))
    assert found["tokens"] == [1, lengths.gen_len]
    assert found["tokens_match"]["bare"], "the bare loop chose other tokens: it does not run the harness's forwards"
    assert found["deterministic"], "a loop is not deterministic; timing comparisons would be meaningless"
    model = f"checkpoint {options.checkpoint_dir}" if options.checkpoint_dir else options.preset
    label = f"{family} ({model} tt b1 {lengths.token} {'+'.join(stack)} {case.dtype})"
    experiment.record(found, summary_line(found, label), name="timing_overhead")
