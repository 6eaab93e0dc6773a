"""Does a case fit the device's memory? An estimate from the model config, explained by parts.

Used at expansion to cut a batch-size sweep at the largest batch that fits (larger ones are
dropped with the estimate as the reason). It is an upper-bound style estimate, not a
measurement (peak_mem_bytes is measured per case):
  weights      parameters x bytes per element (counted on the meta device: nothing allocated);
               a quantized stack keeps the float model and builds its copy from a float copy,
               so it counts the weights twice;
  kv_cache     decoders: 2 (K and V) x layers x kv heads x head dim x longest sequence x rows;
  activations  decoders: the prefill's full-prompt logits ([rows, prompt, vocab]; transformers'
               LlamaForCausalLM computes them for every position) plus one layer's live tensors
               (hidden x 4 + FFN x 2 per token) and the eager baseline's attention scores
               ([rows, heads, prompt, sequence] at EAGER_SCORE_BYTES each; every workload runs the
               eager baseline for its expected outputs); recommenders: the item table, each block's fused
               projection and its [users, heads, len, len] attention scores.
The device's capacity: CUDA total memory, or the CPU's physical memory, of which FIT_FRACTION
may be used (allocator fragmentation, the CUDA context, other processes, the estimate's error).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from harness.levers import LEVERS
from harness.measure.profile.sol import BYTES_PER_DTYPE, DecoderShape
from harness.spec.matrix import Case
from harness.spec.workload import DISTRIBUTIONS

FIT_FRACTION = 0.8
GIB = 1024**3
LOGITS_BYTES = 4  # logits are compared and chosen in float32
SOFTMAX_BYTES = 4  # eager attention's softmax runs in float32 whatever the model's dtype


def eager_score_bytes(dtype: str) -> int:
    """Bytes per element of [rows, heads, prompt, sequence] that transformers' eager attention
    holds at once (eager_attention_forward in transformers 5.x: `softmax(scores, dtype=float32)
    .to(dtype)`): the masked scores in the dtype stay alive while ATen's softmax first upcasts
    them (`input.toType(float)`) and then writes a float32 result: bfloat16 2 + 4 + 4 = 10 bytes;
    float32 4 + 4 (the upcast is the input itself). ATen's fused half-to-float softmax skips the
    upcast for float16 on CUDA only (then 2 + 4, and 2 + 4 + 2 for the cast back: 8); counted as 10
    here, an upper bound. The scaled and masked copies before the softmax hold two elements in
    the dtype at most, and the cast back after it 2 + 4 + 2: both less."""
    dtype_bytes = BYTES_PER_DTYPE[dtype]
    upcast = 0 if dtype_bytes == SOFTMAX_BYTES else SOFTMAX_BYTES
    return dtype_bytes + upcast + SOFTMAX_BYTES


@dataclass(frozen=True)
class Estimate:
    parts: dict  # part -> bytes

    @property
    def total_bytes(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        parts = " + ".join(f"{name} {value / GIB:.2f}" for name, value in self.parts.items())
        return f"{self.total_bytes / GIB:.2f} GiB ({parts})"


@cache
def _parameters(family: str, preset: str) -> int:
    from harness.families.models import count_parameters_on_meta  # torch: only when a sweep is cut

    return count_parameters_on_meta(family, preset)


def _model_config(family: str, preset: str):
    from harness.families.models import model_config

    return model_config(family, preset)


def _weights_bytes(case: Case) -> int:
    copies = 2 if any(LEVERS.get(name).slot == "quantization" for name in case.stack) else 1
    return copies * _parameters(case.family, case.preset) * BYTES_PER_DTYPE[case.dtype]


def _rows_and_extra(case: Case) -> tuple[int, int]:
    """Sequences the decoder runs and tokens the runner adds to every prompt, as the family's
    spec says (FamilySpec.fit_rows: guidance streams, an input image); else (batch size, 0)."""
    from harness.families import family_spec
    from harness.lazy import resolve

    ref = family_spec(case.family).fit_rows
    return resolve(ref)(case) if ref else (case.batch_size, 0)


def decoder_estimate(case: Case) -> Estimate:
    shape = DecoderShape.from_config(_model_config(case.family, case.preset))
    rows, extra = _rows_and_extra(case)
    dtype_bytes = BYTES_PER_DTYPE[case.dtype]
    sequence = case.lengths.max_total_len() + extra
    factor = DISTRIBUTIONS[case.lengths.dist]["max_factor"] if case.lengths.dist else 1.0
    prompt = math.ceil(case.lengths.prompt_len * factor) + extra  # the longest prompt a draw can give
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * sequence * rows * dtype_bytes
    logits = rows * prompt * shape.vocab * LOGITS_BYTES
    layer = rows * prompt * (4 * shape.hidden + 2 * shape.ffn) * dtype_bytes
    scores = rows * shape.heads * prompt * sequence * eager_score_bytes(case.dtype)
    return Estimate({"weights": _weights_bytes(case), "kv_cache": kv, "activations": logits + layer + scores})


def recommender_estimate(case: Case) -> Estimate:
    config = _model_config(case.family, case.preset)
    dtype_bytes = BYTES_PER_DTYPE[case.dtype]
    length = min(case.lengths.max_total_len(), config.max_seq_len)
    users = case.batch_size
    table = case.items * config.embedding_dim * dtype_bytes
    projection = users * length * (config.embedding_dim + 4 * config.num_heads * max(config.attention_dim, config.linear_dim))
    scores = users * config.num_heads * length * length
    return Estimate({"weights": _weights_bytes(case), "item_table": table, "activations": (projection + 2 * scores) * dtype_bytes})


# The estimators a family's spec can name (FamilySpec.fit).
ESTIMATORS: dict[str, Callable[[Case], Estimate]] = {"decoder": decoder_estimate, "recommender": recommender_estimate}


def estimate(case: Case) -> Estimate | None:
    """The case's estimated peak memory; None for a family without an estimator (never a guess)."""
    from harness.families import family_spec

    found = ESTIMATORS.get(family_spec(case.family).fit)
    return found(case) if found else None


def capacity_bytes(device: str) -> int:
    """Memory of this device: CUDA total memory, or the machine's physical memory for the CPU."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def does_not_fit(case: Case, capacity: int) -> str:
    """Why the case would not fit in FIT_FRACTION of `capacity` bytes; "" when it fits (or
    when the family has no estimator: then nothing is dropped on a guess)."""
    found = estimate(case)
    allowed = FIT_FRACTION * capacity
    if found is None or found.total_bytes <= allowed:
        return ""
    return f"batch {case.batch_size} does not fit: estimated {found.describe()} > {FIT_FRACTION:.0%} of {capacity / GIB:.1f} GiB"


def together_bytes(cases: Sequence[Case]) -> int | None:
    """Estimated bytes of all these cases' sessions kept warm at once: the shared float weights
    once, then each case's own parts (its KV cache, activations, a quantized copy). None when a
    family has no estimator."""
    found = [estimate(case) for case in cases]
    if not cases or any(item is None for item in found):
        return None
    shared = max(_parameters(case.family, case.preset) * BYTES_PER_DTYPE[case.dtype] for case in cases)
    own = sum(item.total_bytes for item in found if item is not None) - shared * len(cases)
    return shared + own


def fit_together(cases: Sequence[Case], device: str) -> tuple[bool, str]:
    """Whether a workload's stacks can all stay warm on the device for interleaved rounds, and
    the reason recorded with the choice."""
    if len(cases) < 2:
        return True, "one stack"
    found = together_bytes(cases)
    if found is None:
        return True, "no fit estimate for this family: all stacks kept warm"
    capacity = capacity_bytes(device)
    if found <= FIT_FRACTION * capacity:
        return True, ""
    return False, (f"the {len(cases)} stacks kept warm together need an estimated {found / GIB:.2f} GiB "
                   f"> {FIT_FRACTION:.0%} of {capacity / GIB:.1f} GiB: measured one after another")
