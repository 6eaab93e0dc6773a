"""One table from operator and kernel names to time categories.

A chain is what encloses a piece of work, outermost first: host ranges and operators, and on
a GPU the kernel's own name last. The first name in the chain that a rule matches decides, so
`aten::linear > aten::matmul > aten::mm` is `linear` and `aten::embedding > aten::index_select`
is `embedding`. A `harness::cat::<category>` range (opened by a runner around, say, the KV-cache
update or a norm module, only in the profiled iteration) decides over any name inside it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

CATEGORIES = (
    "linear", "attention", "norm", "elementwise", "embedding", "conv", "kv_cache", "sampling",
    "communication", "fused", "other",
)
CATEGORY_RANGE_PREFIX = "harness::cat::"
# A category named by ops outside its runner-opened ranges (e.g. RoPE's `cat` while the cache
# update is annotated) is not that category: such ops count as elementwise data movement.
DEMOTED = "elementwise"

# Ordered: first match wins. Patterns are searched case-insensitively in a single name.
RULES: tuple[tuple[str, str], ...] = (
    # First: inductor's graph call is named by a random hash that may spell "gemm" or "conv".
    ("fused", r"compiledfxgraph|compiled region|compiledfunction"),
    ("communication", r"nccl|c10d|all_?reduce|all_?gather|reduce_?scatter|all_?to_?all|broadcast_"),
    ("sampling", r"argmax|argmin|topk|top_k|multinomial|aten::sort\b|log_softmax|aten::cumsum"),
    # cuDNN's fused attention kernels say `sdpa` (cudnn_generated_fort_native_sdpa_sm90_knob_...).
    ("attention", r"scaled_dot_product|flash|fmha|efficient_attention|attention|softmax|bmm|aten::matmul\b|_sdpa_"),
    ("embedding", r"embedding"),
    # cuDNN's convolutions are implicit GEMMs by kernel name (sm80_xmma_fprop_implicit_gemm_...): before linear.
    ("conv", r"conv|winograd|implicit_gemm|_fprop_|_dgrad_|_wgrad_"),
    # Kernel names matter where no host op encloses the kernel (CUDA-graph replay): on Hopper cuBLAS
    # names its GEMMs nvjet_* (nvjet_tst_128x64_64x4_1x2_h_bz_coopA_NNT), split-K GEMMs end in a
    # splitKreduce_kernel, and inductor's matmul templates are triton_tem_fused_mm_* / *_addmm_*.
    ("linear", (
        r"aten::linear|addmm|aten::mm\b|gemm|gemv|cublas|cutlass|xmma|mkldnn_linear|matmul|_int_mm|int4pack|int8pack|"
        r"nvjet|splitkreduce|triton_tem_fused_\w*mm"
    )),
    ("norm", r"norm|rsqrt"),
    ("kv_cache", r"aten::cat\b|index_select|index_copy|index_put|slice_scatter|catarraybatchedcopy|fused_cat|_cat_"),
    ("elementwise", (
        # reduce_kernel: ATen's reductions (mean, sum) by kernel name alone, e.g. a norm's mean in graph replay.
        r"silu|gelu|relu|sigmoid|tanh|elementwise|vectorized|pointwise|unrolled|triton_poi|reduce_kernel|"
        r"aten::(add|mul|sub|div|neg|pow|mean|sum|exp|where|cos|sin|clamp|masked_fill|fill_|copy_|to|"
        r"_to_copy|contiguous|clone|zero_|zeros|ones|full|arange|tril|triu|eq|le|lt|ge|gt|any|all|bitwise_\w+)\b"
    )),
    ("fused", r"cpp_fused|triton_|inductor"),
)
# Wrapper names (a compiled region, inductor's graph call) decide only when nothing inside them
# is recognised: their own time is fused code whose operators the profiler cannot see.
WEAK = frozenset({"fused"})
_COMPILED = tuple((category, re.compile(pattern, re.IGNORECASE)) for category, pattern in RULES)


def name_category(name: str) -> str | None:
    """The category one name alone says, or None when no rule matches it."""
    for category, pattern in _COMPILED:
        if pattern.search(name):
            return category
    return None


def decide(chain: Sequence[str], annotated: Collection[str] = ()) -> tuple[str, str]:
    """(category, the name that decided it) for the innermost work in `chain` (outermost first).

    `annotated`: categories whose ranges the runner opened in this iteration; a name claiming
    one of them outside such a range is demoted (see DEMOTED)."""
    ops = [name for name in chain if not name.startswith("harness::")]
    for index in range(len(chain) - 1, -1, -1):
        if chain[index].startswith(CATEGORY_RANGE_PREFIX):
            inside = [name for name in chain[index + 1:] if not name.startswith("harness::")]
            return chain[index][len(CATEGORY_RANGE_PREFIX):], inside[0] if inside else chain[index]
    weak = None
    for name in ops:
        category = name_category(name)
        if category in WEAK:
            weak = weak or (category, name)
        elif category is not None:
            return (DEMOTED if category in annotated else category), name
    return weak or ("other", ops[-1] if ops else "")


def categorize(chain: Sequence[str], annotated: Collection[str] = ()) -> str:
    return decide(chain, annotated)[0]


def category_range(category: str) -> str:
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    return CATEGORY_RANGE_PREFIX + category
