"""HSTU (generative recommendation: rank and retrieve over user histories), written here in pure
torch (`model.py`, `flex.py`), under batch-layout levers; docs/families/hstu.md."""

from __future__ import annotations

from harness.spec.matrix import FamilySpec, Workload
from harness.spec.workload import TABLES, Lengths, empirical

# padded is the baseline; `fixed` gives the fixed shapes compile, flex and CUDA graphs need.
# No jagged+compile: its per-history lengths make compile guard on them and recompile per batch.
RECOMMENDER_STACKS = (
    ("padded",),
    ("jagged",),
    ("fixed",),
    ("fixed", "compile"),
    ("fixed", "flex"),
    ("fixed", "cudagraphs"),
    ("fixed", "compile", "cudagraphs"),
)

# Real history lengths: events per user of MovieLens-100k (943 users, 20 to 737 events;
# docs/workloads.md), scaled so that the longest fits the preset's max_seq_len (harness/families/
# hstu/model.py: 200 for paper-ml1m, 500 for paper; the scale is in the workload id), which keeps
# the distribution's shape and so its padding waste. tiny: a quarter, rank only, padded vs jagged.
ML100K_TINY = Workload(
    8, empirical("ml100k", scale=0.25, gen_len=16), ("rank",), items=20_000, stacks=(("padded",), ("jagged",)),
)


def movielens(max_seq_len: int, gen_len: int) -> Lengths:
    """ml100k histories scaled by max_seq_len / the longest history, rounded down to a hundredth."""
    longest = max(history for history, _ in TABLES["ml100k"].rows())
    return empirical("ml100k", scale=max_seq_len * 100 // longest / 100, gen_len=gen_len)


SPEC = FamilySpec(
    name="hstu",
    tasks=("rank", "retrieve"),
    stacks=RECOMMENDER_STACKS,
    # prompt_len: history length (median of per-user draws; ml100k: the cap); gen_len: candidates (rank) or k
    # (retrieve); items: rows of the item table. longtail: skewed histories, where padding costs.
    workloads={
        "tiny": (Workload(8, Lengths(32, 16, dist="longtail"), items=20_000), ML100K_TINY),
        "small": (
            Workload(32, Lengths(64, 128, dist="longtail"), items=100_000),
            Workload(32, Lengths(64, 128, dist="longtail"), items=1_000_000),
        ),
        "paper-ml1m": (
            Workload(128, Lengths(64, 100, dist="longtail"), items=4_000),
            Workload(128, movielens(max_seq_len=200, gen_len=100), items=4_000),
        ),
        "paper": (
            Workload(128, Lengths(100, 512, dist="longtail"), items=100_000),
            Workload(128, Lengths(100, 512, dist="longtail"), items=1_000_000),
            Workload(32, Lengths(500, 512), items=1_000_000),
            Workload(128, movielens(max_seq_len=500, gen_len=512), items=1_000_000),
        ),
        "paper-long": (Workload(16, Lengths(1000, 512, dist="longtail"), items=1_000_000),),
    },
    capabilities=frozenset({"layouts", "pointwise_attention", "step_wrappers"}),
    models="harness.families.hstu.model:MODELS",
    runner="harness.families.hstu.runner:RecommenderRunner",
    fit="recommender",
    sol="harness.families.hstu.sol:hstu_sol",
)
