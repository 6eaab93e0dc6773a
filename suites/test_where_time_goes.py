"""Across cases of one run: the profiled iterations tell the attention implementations apart.

Reads the records the llama suite left in this session (it runs first); skips where they are missing.
"""

import pytest


def attention_ops(record) -> set[str]:
    return {name for name, _ in record["top_ops"].get("attention", [])}


def test_eager_and_sdpa_show_attention_in_different_operators(harness_run):
    """The profiled eager and sdpa cases of one workload show attention in different operators, scaled
    dot-product only under sdpa."""
    by_id = {record["id"]: record for record in harness_run.records if record["breakdown"]}
    pairs = [(r, by_id.get(r["workload_id"] + "-sdpa")) for r in by_id.values() if r["stack"] == "eager"]
    pairs = [(eager, sdpa) for eager, sdpa in pairs if sdpa]
    if not pairs:
        pytest.skip("no profiled eager and sdpa case of one workload in this session (--benchmark or --trace-dir)")
    for eager, sdpa in pairs:
        eager_ops, sdpa_ops = attention_ops(eager), attention_ops(sdpa)
        assert any("scaled_dot_product" in name for name in sdpa_ops), sdpa_ops
        assert not any("scaled_dot_product" in name for name in eager_ops), eager_ops
        assert eager_ops != sdpa_ops
