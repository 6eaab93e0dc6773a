"""HSTU model, recommender runner and its levers, on the CPU with small shapes."""

import math

import pytest
import torch
import torch.nn.functional as F

from harness.families import FAMILIES
from harness.families.hstu.flex import FlexAttend
from harness.families.hstu.model import (
    PRESETS,
    HSTUConfig,
    causal_mask,
    pointwise_attention,
    relative_positions,
    save,
    time_buckets,
)
from harness.families.hstu.runner import (
    RecommenderRunner,
    Scored,
    first_score_mismatch,
    fixed_length,
    history_lengths,
    make_batch,
)
from harness.families.models import build_model, count_parameters_on_meta
from harness.levers import LEVERS, LeverNotInEffect, unavailable_reason
from harness.levers.plan import plan_for
from harness.measure.case import RunContext
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.spec.matrix import Case, expand
from harness.spec.workload import Lengths

SMALL = HSTUConfig(num_items=500, embedding_dim=16, num_blocks=2, num_heads=2, attention_dim=8, linear_dim=8, max_seq_len=32)
LENGTHS = [5, 17, 3, 30]


def naive_attention(q, k, v, bias, n_max):
    """Loops over batch, head, query and key: the definition, written out."""
    batch, n, heads, dv = v.shape
    out = torch.zeros(batch, n, heads, dv, dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            for i in range(n):
                for j in range(i + 1):  # causal: keys up to the query
                    weight = F.silu(torch.dot(q[b, i, h], k[b, j, h]) + bias[b, i, j]) / n_max
                    out[b, i, h] += weight * v[b, j, h]
    return out


def test_attention_matches_the_naive_definition_with_bias_and_causal_mask():
    """Pointwise attention matches its definition written out as loops, bias and causal mask included."""
    generator = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 6, 2, 4, generator=generator, dtype=torch.float64) for _ in range(2))
    v = torch.randn(2, 6, 2, 3, generator=generator, dtype=torch.float64)
    bias = torch.randn(2, 6, 6, generator=generator, dtype=torch.float64)
    got = pointwise_attention(q, k, v, bias, n_max := 10)
    torch.testing.assert_close(got, naive_attention(q, k, v, bias, n_max))


def test_attention_ignores_future_keys_and_uses_the_bias():
    """Pointwise attention never looks at later keys and does change with the bias."""
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 5, 1, 4, generator=generator) for _ in range(3))
    bias = torch.zeros(1, 5, 5)
    base = pointwise_attention(q, k, v, bias, 8)
    later_k, later_v = k.clone(), v.clone()
    later_k[:, 3:] += 5.0
    later_v[:, 3:] -= 5.0
    changed = pointwise_attention(q, later_k, later_v, bias, 8)
    torch.testing.assert_close(changed[:, :3], base[:, :3])  # rows before the change: untouched
    assert not torch.allclose(changed[:, 3:], base[:, 3:])
    assert not torch.allclose(pointwise_attention(q, k, v, bias + 1.0, 8), base)


def test_mask_positions_and_time_buckets():
    """The causal mask, the relative positions and the log-scale time buckets match hand-computed values."""
    assert causal_mask(3, "cpu").tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert relative_positions(3, 10, "cpu").tolist() == [[9, 10, 11], [8, 9, 10], [7, 8, 9]]
    buckets = time_buckets(torch.tensor([0, 1, 2, 1000, 10**9]), num_buckets=50)
    assert buckets[0].tolist() == [0, 0, math.floor(math.log(2) / 0.301), math.floor(math.log(1000) / 0.301), 50]
    assert torch.equal(buckets, buckets.T)


def _histories(model_config, lengths, seed=0):
    batch = make_batch(lengths, fixed_len=model_config.max_seq_len, items=model_config.num_items, candidates=3, k=3, seed=seed)
    return batch.layouts


def _users(model, histories, layout, **kwargs):
    h = histories[layout]
    x = model.embed(h.item_ids, h.positions)
    if layout == "jagged":
        return model.encode_jagged(x, h.timestamps, h.length_list)
    return model.encode_padded(x, h.timestamps, h.lengths, **kwargs)


@torch.no_grad()
def test_jagged_padded_and_fixed_layouts_agree():
    """Jagged, padded and fixed layouts of the same histories encode the same users."""
    torch.manual_seed(0)
    model = build_model_from(SMALL)
    layouts = _histories(SMALL, LENGTHS)
    padded = _users(model, layouts, "padded")
    assert layouts["jagged"].item_ids.shape == (sum(LENGTHS),)
    assert layouts["padded"].item_ids.shape == (len(LENGTHS), max(LENGTHS))
    torch.testing.assert_close(_users(model, layouts, "jagged"), padded, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_users(model, layouts, "fixed"), padded, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_flex_attention_path_matches_plain_torch():
    """The flex-attention path, run uncompiled, gives the plain path's users and is called once per block."""
    torch.manual_seed(0)
    model = build_model_from(SMALL)
    layouts = _histories(SMALL, LENGTHS)
    attend = FlexAttend(compiled=False)  # the compiled kernel runs in the suite; same code path
    with pytest.warns(UserWarning, match="without torch.compile"):
        got = _users(model, layouts, "fixed", attend=attend)
    torch.testing.assert_close(got, _users(model, layouts, "fixed"), atol=1e-5, rtol=1e-5)
    assert attend.calls == SMALL.num_blocks


def build_model_from(config):
    from harness.families.hstu.model import HSTU

    return HSTU(config).eval()


def expected_parameters(c: HSTUConfig) -> int:
    per_block = (
        c.embedding_dim * c.num_heads * 2 * (c.linear_dim + c.attention_dim)  # fused u, v, q, k
        + c.num_heads * c.linear_dim * c.embedding_dim + c.embedding_dim  # output linear
        + 2 * c.max_seq_len - 1 + c.num_time_buckets + 1  # relative position and time bias
    )
    return c.num_items * c.embedding_dim + c.max_seq_len * c.embedding_dim + c.num_blocks * per_block


@pytest.mark.parametrize("preset, count", [
    # ml-1m large: block 50*2*100 + 50*50+50 + 399 + 129 = 13,078; 8 blocks + 4000*50 + 200*50
    ("paper-ml1m", 314_624),
    # ml-3b large: block 256*8*128 + 256*256+256 + 999 + 129 = 329,064; 16 blocks + 1e6*256 + 500*256
    ("paper", 261_393_024),
])
def test_parameter_count_against_the_config(preset, count):
    """The paper presets' parameter counts on meta equal the counts derived from their configs by hand."""
    assert count_parameters_on_meta("hstu", preset) == count == expected_parameters(HSTUConfig(**PRESETS[preset]))


def test_paper_configs_are_the_published_shapes():
    """The paper presets hold the published ML-1M and ML-3B shapes, and paper-long has histories of 2000 or
    more."""
    ml1m, ml3b = HSTUConfig(**PRESETS["paper-ml1m"]), HSTUConfig(**PRESETS["paper"])
    assert (ml1m.num_blocks, ml1m.num_heads, ml1m.attention_dim, ml1m.linear_dim, ml1m.max_seq_len) == (8, 2, 25, 25, 200)
    assert (ml3b.num_blocks, ml3b.num_heads, ml3b.attention_dim, ml3b.embedding_dim, ml3b.max_seq_len) == (16, 8, 32, 256, 500)
    assert PRESETS["paper-long"]["max_seq_len"] >= 2000


def test_checkpoint_saved_here_loads_and_scores_the_same(tmp_path):
    """A saved checkpoint loads with the same config and weights and retrieves the same items and scores as
    the random model it came from."""
    original = build_model("hstu", "tiny", "float32", "cpu", seed=5)
    save(original, tmp_path)
    loaded = build_model("hstu", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(tmp_path))
    assert loaded.config == original.config
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    case = Case("hstu", "retrieve", "tiny", "float32", 2, Lengths(8, 4), ("padded",), items=1000)
    contexts = [RunContext(RunOptions(seed=5, checkpoint_dir=folder), "cpu") for folder in ("", str(tmp_path))]
    for ctx in contexts:
        assert execute(case, ctx, measure=False).status == "ok"
    random_out, checkpoint_out = (list(ctx.references.values())[0] for ctx in contexts)
    assert torch.equal(random_out.ids, checkpoint_out.ids) and torch.equal(random_out.scores, checkpoint_out.scores)


def test_history_lengths_are_seeded_skewed_and_capped():
    """History lengths depend on the seed and the iteration's draw, are long-tailed when asked and capped at
    the maximum, and the fixed layout pads to the longest a workload can draw."""
    lengths = Lengths(32, 16, dist="longtail")
    drawn = history_lengths(lengths, 64, (32, 16), seed=0, max_len=256)
    assert drawn == history_lengths(lengths, 64, (32, 16), seed=0, max_len=256)
    assert drawn != history_lengths(lengths, 64, (33, 16), seed=0, max_len=256)
    assert max(drawn) > 3 * sorted(drawn)[32]  # long-tailed: the longest is far above the median
    assert max(history_lengths(lengths, 64, (32, 16), seed=0, max_len=40)) <= 40
    assert history_lengths(Lengths(10, 4), 3, (10, 4), seed=0, max_len=256) == [10, 10, 10]
    assert fixed_length(lengths, 1000) == 256 and fixed_length(lengths, 100) == 100


def test_score_comparison_forgives_near_ties_only():
    """Score comparison forgives small score differences and near-ties that swap places, but reports a
    different item with its row and rank."""
    ids = torch.tensor([[7, 3, 9]])
    expected = Scored(ids, torch.tensor([[0.9, 0.5, 0.49995]]))
    assert first_score_mismatch(expected, Scored(ids, expected.scores + 5e-5), atol=1e-4) is None
    swapped = Scored(torch.tensor([[7, 9, 3]]), torch.tensor([[0.9, 0.49999, 0.49996]]))
    assert first_score_mismatch(expected, swapped, atol=1e-4) is None  # a near-tie swapped places
    wrong = Scored(torch.tensor([[7, 4, 9]]), torch.tensor([[0.9, 0.3, 0.49995]]))
    mismatch = first_score_mismatch(expected, wrong, atol=1e-4)
    assert (mismatch.row, mismatch.rank) == (0, 1)
    assert "expected item 3 (0.5), got item 4 (0.3)" in mismatch.describe()


def test_layout_evidence_catches_a_layout_that_did_not_apply():
    """Layout evidence counts computed and real tokens, and raises when the session ran another layout or flex
    attention was never called."""
    model = build_model("hstu", "tiny", "float32", "cpu", seed=0)
    case = Case("hstu", "rank", "tiny", "float32", 4, Lengths(16, 4, dist="longtail"), ("padded",), items=1000)
    runner = RecommenderRunner(case, model, "cpu", seed=0)
    sessions = {}
    for layout in ("padded", "jagged"):
        sessions[layout] = runner.session(plan_for((layout,)))
        runner.run(sessions[layout], runner.inputs((16, 4)))
    jagged = LEVERS.get("jagged").evidence(sessions["jagged"])
    padded = LEVERS.get("padded").evidence(sessions["padded"])
    assert jagged["computed_tokens"] == jagged["real_tokens"] == padded["real_tokens"] < padded["computed_tokens"]
    with pytest.raises(LeverNotInEffect, match="jagged: the session ran layout 'padded'"):
        LEVERS.get("jagged").evidence(sessions["padded"])
    with pytest.raises(LeverNotInEffect, match="flex: flex_attention was called 0 time"):
        LEVERS.get("flex").evidence(sessions["padded"])


def test_stages_are_timed_per_task():
    """Ranking and retrieval each time the embedding, the encoder and their own last stage within end-to-end
    time, and return items from the catalogue."""
    model = build_model("hstu", "tiny", "float32", "cpu", seed=0)
    for task, stage in (("rank", "score"), ("retrieve", "topk")):
        case = Case("hstu", task, "tiny", "float32", 2, Lengths(8, 5), ("padded",), items=1000)
        runner = RecommenderRunner(case, model, "cpu", seed=0)
        out = runner.run(runner.session(plan_for(("padded",))), runner.inputs((8, 5)))
        assert set(out.stages_s) == {"embedding", "encoder", stage}
        assert out.metrics["e2e_s"] >= sum(out.stages_s.values()) * 0.999
        assert out.value.ids.shape == (2, 5)
        assert out.value.ids.max() < 1000


def test_matrix_for_hstu_levers():
    """HSTU's CPU matrix holds its layout stacks and drops only cudagraphs, and a lever that does not apply or
    lacks its prerequisite says why."""
    cases, dropped = expand(FAMILIES["hstu"], "tiny", ("float32",), "cpu")
    assert {case.stack_name for case in cases} == {"padded", "jagged", "fixed", "fixed+compile", "fixed+flex"}
    assert {cell.reason for cell in dropped} == {"cudagraphs needs a cuda device (this run: cpu)"}
    assert "hstu-retrieve-tiny-b8-longtail-p32-g16-i20000-fp32-jagged" in {case.id for case in cases}
    assert unavailable_reason(("eager",), FAMILIES["hstu"], "cpu") == "eager does not apply to hstu"
    assert unavailable_reason(("jagged",), FAMILIES["llama"], "cpu") == "jagged does not apply to llama"
    assert unavailable_reason(("padded", "cudagraphs"), FAMILIES["hstu"], "cuda") == "cudagraphs needs fixed earlier in the stack"
    assert unavailable_reason(("sdpa", "cudagraphs"), FAMILIES["llama"], "cuda") == "cudagraphs needs static earlier in the stack"
    assert unavailable_reason(("jagged", "flex"), FAMILIES["hstu"], "cpu") == "flex needs fixed earlier in the stack"


def test_cases_without_items_keep_their_dict():
    """A case without items leaves them out of its dict, and one with items round-trips and names them in its
    id."""
    case = Case("llama", "tt", "tiny", "float32", 1, Lengths(8, 4), ("eager",))
    assert "items" not in case.to_dict() and Case.from_dict(case.to_dict()) == case
    with_items = Case("hstu", "rank", "tiny", "float32", 1, Lengths(8, 4), ("padded",), items=10)
    assert Case.from_dict(with_items.to_dict()) == with_items and with_items.id.endswith("-i10-fp32-padded")


def test_presets_pick_the_families_that_declare_them():
    """A preset selects only the families that declare it, and the default selects all four."""
    from harness.spec.selection import select

    assert select(RunOptions(preset="paper-ml1m"), cuda_available=False).families == ("hstu",)
    assert select(RunOptions(preset="paper-7b"), cuda_available=False).families == ("llama", "chameleon")
    assert set(select(RunOptions(), cuda_available=False).families) == {"llama", "chameleon", "hstu", "seamless"}
