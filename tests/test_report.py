import pytest

from harness.publish.terminal import evidence_summary, output_tokens_per_s, render_text, rows


def record(stack, e2e, status="ok", workload="llama-tt-tiny-b1-p8-g4-fp32", **extra):
    return {
        "id": f"{workload}-{stack}", "workload_id": workload, "family": "llama", "stack": stack,
        "status": status, "message": "", "batch_size": 2, "gen_lens": [4] * len(e2e),
        "ttft_s": [0.01] * len(e2e), "tpot_s": [0.002] * (3 * len(e2e)), "e2e_s": e2e,
        "peak_mem_bytes": 2 * 1024 * 1024, "outputs_match": True, "evidence": {}, **extra,
    }


def test_speedup_is_against_the_baseline_of_the_same_workload():
    """A row's speed-up is against the baseline stack of its own workload, and there is none when that was not
    measured in the run."""
    table = rows([record("eager", [0.4, 0.4]), record("sdpa", [0.2, 0.2]), record("sdpa", [0.1], workload="other")])
    by_id = {row.case_id: row for row in table}
    assert by_id["llama-tt-tiny-b1-p8-g4-fp32-eager"].speedup == pytest.approx(1.0)
    assert by_id["llama-tt-tiny-b1-p8-g4-fp32-sdpa"].speedup == pytest.approx(2.0)
    assert by_id["other-sdpa"].speedup is None  # no baseline measured in this run


def test_p90_hidden_with_few_samples_and_tokens_per_s():
    """TPOT p90 is hidden with too few samples, and output tokens per second are the median over iterations of
    the whole batch's rate."""
    row = rows([record("eager", [0.4, 0.4])])[0]
    assert row.tpot_p90_s is None and row.tpot_p50_s == pytest.approx(0.002)
    assert output_tokens_per_s(record("eager", [0.4, 0.2])) == pytest.approx(30.0)


def test_evidence_summary_uses_lever_briefs():
    """The evidence summary uses each lever's brief and falls back to key=value for a lever no longer
    registered."""
    text = evidence_summary({
        "sdpa": {
            "attn_implementation": "sdpa",
            "attention_ops": ["aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention_for_cpu"],
        },
        "static": {"cache_class": "StaticCache", "max_cache_len": 12},
        "compile": {"graphs": 1, "graph_breaks": 0, "recompiles_during_timing": 0, "backend": "inductor"},
        "retired-lever": {"x": 1},
    })
    assert text == (
        "sdpa: flash_attention_for_cpu; static: StaticCache[12]; "
        "compile: graphs=1 breaks=0 recompiles=0; retired-lever: x=1"
    )


def test_render_shows_failed_cases_with_status():
    """The table shows a failed case with its status."""
    text = render_text(rows([record("eager", [0.4]), record("sdpa", [], status="mismatch", message="differs")]))
    assert "llama-tt-tiny-b1-p8-g4-fp32-eager" in text and "(mismatch)" in text


def test_recommender_rows_show_e2e_and_stages_and_decoder_tables_keep_their_columns():
    """Recommender rows show end-to-end time and stage medians instead of TTFT, while decoder tables keep
    their TTFT columns."""
    hstu = record("padded", [0.3, 0.1], workload="hstu-rank-tiny-b8-p8-g4-i100-fp32", ttft_s=[], tpot_s=[],
                  stages_s={"embedding": [0.01, 0.01], "encoder": [0.15, 0.05], "score": [0.02, 0.02]})
    jagged = dict(hstu, id="hstu-rank-tiny-b8-p8-g4-i100-fp32-jagged", stack="jagged", e2e_s=[0.1, 0.1])
    hstu["family"] = jagged["family"] = "hstu"
    table = rows([hstu, jagged])
    assert table[0].stages_p50_s == (("embedding", 0.01), ("encoder", 0.1), ("score", 0.02))
    assert table[1].speedup == pytest.approx(2.0)
    text = render_text(table)
    assert "e2e p50 ms" in text and "stages p50 ms" in text and "encoder 100.00" in text and "TTFT" not in text
    decoder_text = render_text(rows([record("eager", [0.4])]))
    assert "TTFT p50 ms" in decoder_text and "stages" not in decoder_text and "e2e p50" not in decoder_text
def test_profile_table_shows_top_categories_idle_and_sol_per_phase():
    """The profile table shows each phase's top categories, idle share, speed of light and ops per token,
    appears only when a case was profiled, and marks an unreliable phase."""
    profiled = record(
        "eager", [0.4], breakdown={"decode": {"linear": 0.1, "attention": 0.5, "norm": 0.05, "other": 0.01}},
        profile_wall_s={"decode": 1.0}, idle_frac={"decode": 0.34}, sol_frac={"decode": 0.012},
        profile_reliable={"decode": True}, ops_per_token=314.0, ops_unit="host ops",
    )
    row = rows([profiled, record("sdpa", [0.2])])[0]
    assert row.top == {"decode": "attention 50% linear 10% norm 5%"}
    text = render_text(rows([profiled, record("sdpa", [0.2])]))
    assert "where the time goes" in text and "speed-up e2e" in text
    assert "attention 50% linear 10% norm 5%" in text and "34%" in text and "1.2%" in text and "314 host ops" in text
    assert "where the time goes" not in render_text(rows([record("sdpa", [0.2])]))
    unreliable = {**profiled, "profile_reliable": {"decode": False}, "idle_frac": {"decode": None}}
    assert rows([unreliable])[0].top["decode"].endswith("(unreliable)")


def test_profile_table_lists_a_staged_case_stage_by_stage():
    """A staged runner's profile gets one line per stage with its top categories and idle share, beside the
    prefill and decode table of a decoder case."""
    decoder = record("eager", [0.4], breakdown={"decode": {"linear": 0.1}}, profile_wall_s={"decode": 1.0},
                     idle_frac={"decode": 0.5})
    staged = record("sdpa", [0.2], breakdown={"vq_encode": {"conv": 0.3}, "cfg": {"elementwise": 0.1, "sampling": 0.05}},
                    profile_wall_s={"vq_encode": 0.5, "cfg": 0.2}, idle_frac={"vq_encode": 0.4, "cfg": 0.25})
    text = render_text(rows([decoder, staged]), width=200)
    assert "where the time goes (profiled" in text and "where the time goes, by stage" in text
    cfg_line = next(line for line in text.splitlines() if " cfg " in line)
    assert "elementwise 50% sampling 25%" in cfg_line and "25%" in cfg_line
    assert any(" vq_encode " in line and "conv 60%" in line and "40%" in line for line in text.splitlines())


def test_each_family_gets_its_own_table_and_long_ids_leave_the_numbers_whole():
    """Each family gets a table of its own in which a long id folds without splitting the numbers, and the
    lever evidence names its case."""
    # A SeamlessM4T id of 84 characters once took the width of a single 160-column table and
    # folded every number into 3-character slivers.
    workload = "seamless-ss-tiny-b1-lognormal-p64-g16-beam4-fp32"
    seamless = dict(
        record("eager", [0.4123]), id=f"{workload}-sdpa+static+inplace-reorder+compile", workload_id=workload,
        family="seamless", stack="sdpa+static+inplace-reorder+compile", tpot_s=[0.0123456] * 3,
        evidence={"retired-lever": {"x": 1}},
    )
    text = render_text(rows([record("eager", [0.4]), seamless]), width=160)
    assert "harness results: llama" in text and "harness results: seamless" in text
    assert "ss-tiny-b1-lognormal-p64-g16-beam4-fp32-sdpa+static+inplace-reorder+compile" in text
    assert "12.346" in text  # the TPOT p50, on one line
    evidence = text[text.index("lever evidence"):]
    assert seamless["id"] in evidence and "retired-lever: x=1" in evidence
