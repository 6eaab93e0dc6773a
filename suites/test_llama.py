"""Llama (code generation, task tt) over the matrix its spec declares (harness/families/llama/)."""

import pytest

from harness.measure.profile.analysis import ACCOUNTED_SLACK_S, ACCOUNTED_TOLERANCE, accounted_fracs

pytestmark = pytest.mark.family("llama")


def test_llama(case, harness):
    """Each Llama case of the matrix passes the harness, and a profiled one accounts for each phase's time and
    shows KV-cache time for a dynamic cache."""
    record = harness(case).to_record()
    if not record["breakdown"]:
        return  # quick check without --trace-dir: no profiled iteration
    if record["profile_contended"]:
        return  # the machine disturbed every take of the profile (its notes say so): nothing to account for
    for phase, frac in accounted_fracs(record).items():
        allowed = max(ACCOUNTED_TOLERANCE, ACCOUNTED_SLACK_S / record["profile_wall_s"][phase])
        assert abs(frac - 1) <= allowed, f"{phase}: categories + idle account for {frac:.1%} of the iteration"
    if "static" not in case.stack:
        kv_s = sum(found.get("kv_cache", 0.0) for found in record["breakdown"].values())
        assert kv_s > 0, "a dynamic cache grows by cat every step, yet the profile shows no KV-cache time"
