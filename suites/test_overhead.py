"""The harness's own cost: its per-token decode timing against a bare loop of the same forwards.

A benchmark, not a timed test: the ratio is measured in one run and reported, never asserted
against wall-clock limits. Without --benchmark it only checks that both loops run the same forwards.
"""

import torch

from harness.levers.plan import plan_for
from harness.measure.clock import make_clock
from harness.measure.overhead import measure_overhead
from harness.families.decoder import DecoderSession, decode_positions, generate
from harness.analyse.stats import median
from harness.spec.workload import prompt_ids

PROMPT_LEN, GEN_LEN = 32, 64
BENCH_PAIRS, QUICK_PAIRS = 30, 2
STACK = ("sdpa",)


def test_timing_overhead(harness_experiment):
    """The decode loop is deterministic, the harness's timed loop and a bare loop of the same forwards are
    measured in pairs, and the timing overhead is reported under --benchmark."""
    experiment = harness_experiment("llama")
    device = experiment.device
    model = experiment.model(preset="tiny", checkpoint_dir="")
    session = DecoderSession(model, plan_for(STACK), 1, PROMPT_LEN + GEN_LEN)
    ids = prompt_ids(1, PROMPT_LEN, model.config.vocab_size, experiment.options.seed).to(device)
    positions = decode_positions(1, PROMPT_LEN, GEN_LEN, device)
    first = generate(session, ids, positions, make_clock(device, GEN_LEN)).tokens
    second = generate(session, ids, positions, make_clock(device, GEN_LEN)).tokens
    assert torch.equal(first, second), "the decode loop is not deterministic; timing comparisons would be meaningless"

    found = measure_overhead(session, ids, positions, experiment.pairs(BENCH_PAIRS, QUICK_PAIRS))
    assert len(found["harness_decode_s"]) == len(found["bare_decode_s"])
    if experiment.benchmark is not None:
        # Route the harness loop through pytest-benchmark too, so --benchmark-json carries it.
        experiment.benchmark.pedantic(generate, args=(session, ids, positions, make_clock(device, GEN_LEN)), rounds=5)
    per_token_ms = 1e3 / (GEN_LEN - 1)
    experiment.record(found, (
        f"timing overhead {100 * (found['overhead_ratio'] - 1):+.2f}% of decode time "
        f"(tiny llama sdpa, {BENCH_PAIRS} interleaved pairs; harness "
        f"{per_token_ms * median(found['harness_decode_s']):.3f} ms/token, bare "
        f"{per_token_ms * median(found['bare_decode_s']):.3f} ms/token)"
    ))
