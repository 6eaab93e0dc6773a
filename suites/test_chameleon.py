"""Chameleon (it, itt, ti, tt) over the matrix its spec declares (harness/families/chameleon/), and the cost of
classifier-free guidance (three streams) against one stream, measured in the same run."""

import pytest

from harness.analyse.stats import median
from harness.families import FAMILIES
from harness.families.chameleon.cfg_cost import measure_cfg_cost
from harness.measure.profile.analysis import profile_problems

pytestmark = pytest.mark.family("chameleon")

CFG_STACK = ("sdpa",)
BENCH_PAIRS, QUICK_PAIRS, QUICK_TOKENS = 5, 1, 4


def test_chameleon(case, harness):
    """Each Chameleon case of the matrix passes the harness and generates exactly its drawn number of tokens
    in every timed iteration, one whole image per row for ti, and a profiled one accounts for each stage's time."""
    result = harness(case)
    generated = result.samples.get("generated_tokens", {})
    kind = "image" if case.task == "ti" else "text"
    # Every timed iteration produced exactly its drawn length: for ti, one whole image per row.
    assert generated.get(kind, []) == result.samples.get("gen_lens", [])
    problems = profile_problems(result.to_record())
    assert not problems, problems


def test_cfg_cost(harness_experiment):
    """Classifier-free guidance's three streams and a single stream generate the same number of image tokens,
    and the guidance's cost is reported under --benchmark."""
    experiment = harness_experiment("chameleon")
    options = experiment.options
    (workload,) = [w for w in FAMILIES["chameleon"].workloads[options.preset] if "ti" in w.tasks]
    gen_len = workload.lengths.gen_len if experiment.benchmarking else QUICK_TOKENS
    model, pairs = experiment.model(), experiment.pairs(BENCH_PAIRS, QUICK_PAIRS)
    found = experiment.measure(
        lambda: measure_cfg_cost(model, experiment.device, options.seed, workload, gen_len, CFG_STACK, pairs)
    )
    assert found["guided_tokens"] == found["single_tokens"] == gen_len
    experiment.record(found, (
        f"chameleon CFG cost: 3 streams / 1 stream = {found['cfg_cost_ratio']:.2f}x image-decode time "
        f"({options.preset} ti b{workload.batch_size}, {'+'.join(CFG_STACK)}, {pairs} interleaved pairs; "
        f"{1e3 * median(found['guided_tpot_s']):.3f} vs {1e3 * median(found['single_tpot_s']):.3f} ms/token)"
    ))
