"""HSTU (generative recommendation: rank and retrieve over user histories), written here in pure
torch (`model.py`, `flex.py`), under batch-layout levers; docs/families/hstu.md."""

from __future__ import annotations

from harness.spec.matrix import FamilySpec, Workload
from harness.spec.workload import Lengths

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

SPEC = FamilySpec(
    name="hstu",
    tasks=("rank", "retrieve"),
    stacks=RECOMMENDER_STACKS,
    # prompt_len: history length (median of per-user draws); gen_len: candidates (rank) or k
    # (retrieve); items: rows of the item table. longtail: skewed histories, where padding costs.
    workloads={
        "tiny": (Workload(8, Lengths(32, 16, dist="longtail"), items=20_000),),
        "small": (
            Workload(32, Lengths(64, 128, dist="longtail"), items=100_000),
            Workload(32, Lengths(64, 128, dist="longtail"), items=1_000_000),
        ),
        "paper-ml1m": (Workload(128, Lengths(64, 100, dist="longtail"), items=4_000),),
        "paper": (
            Workload(128, Lengths(100, 512, dist="longtail"), items=100_000),
            Workload(128, Lengths(100, 512, dist="longtail"), items=1_000_000),
            Workload(32, Lengths(500, 512), items=1_000_000),
        ),
        "paper-long": (Workload(16, Lengths(1000, 512, dist="longtail"), items=1_000_000),),
    },
    capabilities=frozenset({"layouts", "pointwise_attention", "step_wrappers"}),
    models="harness.families.hstu.model:MODELS",
    runner="harness.families.hstu.runner:RecommenderRunner",
    fit="recommender",
)
