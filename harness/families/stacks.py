"""Lever stacks and batch sweeps that several families declare (each family's spec picks its own).

Stacks are cumulative in the paper's spirit; a family's first stack is its baseline.
"""

from __future__ import annotations

DECODER_STACKS = (
    ("eager",),
    ("sdpa",),
    ("sdpa", "static"),
    ("sdpa", "compile"),
    ("sdpa", "static", "compile"),
    ("sdpa", "static", "cudagraphs"),
    ("sdpa", "static", "compile", "cudagraphs"),
)

# Quantization on top of the decoder ladder, cumulative as the paper's (quantization comes after
# CUDA graphs): every scheme on the full ladder (CUDA: static cache + compile + CUDA graphs) and
# on plain sdpa (what quantization alone buys, on any device); int8 dynamic also on the CPU's
# top rung (sdpa + static + compile; docs/facts.md: there it is on par with bf16). Schemes a device
# or the installed torchao cannot run are dropped at expansion with the reason.
QUANT_SCHEMES = ("int8dq", "int8wo", "int4wo", "autoquant", "dynint8")
QUANT_STACKS = (
    *((("sdpa", scheme)) for scheme in QUANT_SCHEMES),
    ("sdpa", "static", "compile", "int8dq"),
    *((("sdpa", "static", "compile", "cudagraphs", scheme)) for scheme in QUANT_SCHEMES),
)
# Speculative greedy decoding (harness/families/speculative.py): the decoder runner's loop.
SPECULATIVE_STACKS = (("sdpa", "selfspec"), ("sdpa", "lookup"))
# Where acceptance is exercised: the labelled synthetic draft-friendly weights (random weights
# accept almost nothing), with the baseline and plain sdpa beside the speculative stacks.
DRAFT_FRIENDLY_STACKS = (("eager",), ("sdpa",), *SPECULATIVE_STACKS)

# Compiling a quantized decode step costs 30-60 s per case on the 2-core CI CPU (seen here), so
# on tiny it runs only when named (--stacks sdpa+static+compile+int8dq).
QUANT_OPT_IN = {"tiny": (("sdpa", "static", "compile", "int8dq"),)}

# Batch-size sweeps (--batch-sizes sweep), per preset: powers of two, cut at expansion at the
# largest batch whose estimated memory fits the device (harness/spec/fit.py). tiny stops at 16: it
# fits anything, and the sweep is for seeing a lever's win hold or vanish, in CPU minutes.
BATCH_SWEEPS = {"tiny": (1, 2, 4, 8, 16)}
DEFAULT_BATCH_SWEEP = tuple(2**power for power in range(9))  # 1 .. 256


def batch_sweep(preset: str) -> tuple[int, ...]:
    return BATCH_SWEEPS.get(preset, DEFAULT_BATCH_SWEEP)
