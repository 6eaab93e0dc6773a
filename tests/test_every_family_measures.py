"""The measuring path (warm-up, profiled iteration, timed loop, speed of light) for every
family's runner: what `pytest suites/ --benchmark` runs, on one tiny baseline case each."""

import pytest

from harness.bench import execute
from harness.families import FAMILIES
from harness.matrix import expand


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_baseline_case_of_every_family_measures(family, ctx_factory):
    cases, _ = expand(FAMILIES[family], "tiny", ("float32",), "cpu", only_stacks=("+".join(FAMILIES[family].baseline),))
    result = execute(cases[0], ctx_factory(iterations=2, warmup=0), measure=True)
    assert result.status == "ok", f"{cases[0].id}: {result.message}\n{result.traceback}"
    record = result.to_record()
    assert len(record["e2e_s"]) == 2 and record["outputs_match"]
