"""Does a case fit the device's memory? An estimate from the model config, explained by parts.

Used at expansion for every case: a case that would not fit is dropped with the estimate as the
reason (a batch-size sweep is so cut at the largest batch that fits), before anything is built.
It is an upper-bound style estimate, not a measurement (peak_mem_bytes is measured per case):
  weights      parameters x bytes per element of the case's dtype (counted on the meta device:
               nothing allocated); the model is built in that dtype, and a quantized stack alone
               quantizes it in place, so once;
  build        building in a dtype other than float32 holds one parameter in float32 at a time
               (harness/families/dtype_build.py): the largest one (a synthetic weight variant's
               build: all of them, harness/families/models.py);
  kv_cache     decoders: 2 (K and V) x layers x kv heads x head dim x longest sequence x rows;
  activations  decoders: the prefill's full-prompt logits ([rows, prompt, vocab]; transformers'
               LlamaForCausalLM computes them for every position) plus one layer's live tensors
               (hidden x 4 + FFN x 2 per token) and the eager baseline's attention scores
               ([rows, heads, prompt, sequence] at EAGER_SCORE_BYTES each; every workload runs the
               eager baseline for its expected outputs); recommenders: the item table, each block's fused
               projection and its [users, heads, len, len] attention scores.
The device's capacity: the memory this process can have, free memory plus what its own allocator
or heap already holds (CUDA: mem_get_info's free + memory_reserved; CPU: MemAvailable + resident
size), of which FIT_FRACTION may be used (fragmentation, the estimate's error). Stacks kept warm
together (fit_together) count the float weights once and each quantized stack's copy beside them.
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
def _parameter_sizes(family: str, preset: str) -> tuple[int, int]:
    from harness.families.models import parameter_sizes_on_meta  # torch: only once a case is estimated

    return parameter_sizes_on_meta(family, preset)


def _parameters(family: str, preset: str) -> int:
    return _parameter_sizes(family, preset)[0]


def _model_config(family: str, preset: str):
    from harness.families.models import model_config

    return model_config(family, preset)


def _quantizes(case: Case) -> bool:
    return any(LEVERS.get(name).slot == "quantization" for name in case.stack)


def _weights_bytes(case: Case) -> int:
    """The float weights once: a quantized stack measured alone quantizes them in place."""
    return _parameters(case.family, case.preset) * BYTES_PER_DTYPE[case.dtype]


def _build_bytes(case: Case) -> int:
    """The one float32 parameter a build in another dtype holds at a time (its largest); a synthetic
    weight variant's build, the whole float32 model (build_model)."""
    if case.dtype == "float32":
        return 0
    total, largest = _parameter_sizes(case.family, case.preset)
    return (total if case.weights else largest) * BYTES_PER_DTYPE["float32"]


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
    if found is None:
        return None
    parts = found(case).parts
    return Estimate({"weights": parts["weights"], "build": _build_bytes(case), **parts})


def capacity_bytes(device: str) -> int:
    """Memory this process can have on the device: what is free plus what it already holds (CUDA:
    free memory and its allocator's reserved bytes; CPU: MemAvailable and its resident size)."""
    if device.startswith("cuda"):
        import torch

        free_bytes, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free_bytes) + int(torch.cuda.memory_reserved(device))
    return _available_bytes() + _resident_bytes()


MEMINFO = "/proc/meminfo"


def _available_bytes() -> int:
    """The kernel's MemAvailable (free memory plus reclaimable caches); physical memory where
    /proc/meminfo cannot say."""
    try:
        with open(MEMINFO, encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def does_not_fit(case: Case, capacity: int) -> str:
    """Why the case would not fit in FIT_FRACTION of `capacity` bytes; "" when it fits (or
    when the family has no estimator: then nothing is dropped on a guess)."""
    found = estimate(case)
    allowed = FIT_FRACTION * capacity
    if found is None or found.total_bytes <= allowed:
        return ""
    return (f"does not fit the device's memory: estimated {found.describe()} > {FIT_FRACTION:.0%} of "
            f"{capacity / GIB:.1f} GiB available")


def together_bytes(cases: Sequence[Case]) -> int | None:
    """Estimated bytes of all these cases' sessions kept warm at once: the shared float weights
    once, then each case's own parts (its KV cache, activations), and each quantized stack's copy
    of the float weights (it quantizes a copy while the others keep the float model; counted at
    the float size, an upper bound). None when a family has no estimator."""
    found = [estimate(case) for case in cases]
    if not cases or any(item is None for item in found):
        return None
    shared = max(item.parts["weights"] + item.parts["build"] for item in found if item is not None)  # built once
    own = sum(item.total_bytes - item.parts["weights"] - item.parts["build"] for item in found if item is not None)
    copies = sum(_weights_bytes(case) for case in cases if _quantizes(case))
    return shared + own + copies


def fit_together(cases: Sequence[Case], device: str) -> tuple[bool, str]:
    """Whether a workload's stacks can all stay warm on the device for interleaved rounds, and
    the reason recorded with the choice. For a quantized stack, alone or not, that includes its
    copy beside the float model; where that does not fit, it quantizes the float model itself."""
    if len(cases) < 2 and not any(_quantizes(case) for case in cases):
        return True, "one stack"
    found = together_bytes(cases)
    if found is None:
        return True, "no fit estimate for this family: all stacks kept warm"
    capacity = capacity_bytes(device)
    if found <= FIT_FRACTION * capacity:
        return True, ""
    return False, (f"the {len(cases)} stack(s) kept warm together, with each quantized stack's copy beside the float "
                   f"model, need an estimated {found / GIB:.2f} GiB > {FIT_FRACTION:.0%} of {capacity / GIB:.1f} GiB: "
                   "measured one after another, a quantized stack on the float model itself")
