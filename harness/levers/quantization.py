"""The quantization levers, one row per scheme of harness.levers.quantize_model.SCHEMES.

A quantization lever asks the session for a quantized copy of its model (Plan.quantization;
harness.levers.quantize_model does the work on any nn.Module) and proves it by the census of linear layers:
how many were replaced, and by what. Quantization changes the answer a little by design, so
these levers are lossy: their outputs are checked against the baseline stack's to the one
stated tolerance below, never exactly.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from harness.levers import ALL_DEVICE_TYPES, ALL_DTYPES, Lever, LeverNotInEffect, Tolerance
from harness.levers.quantize_model import scheme, unavailable

# A family has the "quantized_copy" capability when its session runs a quantized copy of its
# model (DecoderSession does, for llama and chameleon). HSTU has not: its few small linears
# (fused uvqk, output) are not where its time goes, and its output check is a score comparison
# of its own. SeamlessM4T's session makes no quantized copy yet.
NEEDS = frozenset({"quantized_copy"})

# Why top-5 and not top-1: with random weights the top two logits of a tiny model are a few
# hundredths apart (median 0.02 measured here), less than int8 rounding moves them, so greedy
# top-1 choices flip often without anything being wrong (int8 dq: ~89% top-1 over 256
# teacher-forced positions). The baseline's token staying among the quantized model's five
# best at (almost) every position is what a working int8/int4 model keeps; a broken kernel
# or scale does not. Top-1 agreement is recorded and shown beside it.
QUANT_TOLERANCE = Tolerance(
    metric="top5_agreement",
    minimum=0.95,
    why="teacher-forced: the baseline's token among the quantized stack's 5 best logits",
)


def configure(plan, name: str):
    return dataclasses.replace(plan, quantization=name)


# Where torchao's int8 x int8 matmul (int8dq) goes through `safe_int_mm`, which calls torch._int_mm
# and, on any error, silently computes a float32 matmul instead (torchao/kernel/intmm.py). The CPU
# takes its own path (`_int_scaled_matmul_cpu`), and a compiled step lowers the op without the
# fallback, so only eager steps on these devices can time the fallback as int8.
SAFE_INT_MM_DEVICE_TYPES = frozenset({"cuda"})
INT_MM_PROBE_DIM = 32  # K and N of the probe: multiples of 8, as cuBLAS's int8 path requires


def int_mm_refusal(rows: int, device) -> str:
    """Why torch._int_mm refuses a [rows, K] int8 input on `device` ("" when it runs): on CUDA it
    needs more than 16 rows, so batch-1 decode never runs int8 there."""
    import torch

    a = torch.zeros((rows, INT_MM_PROBE_DIM), dtype=torch.int8, device=device)
    b = torch.zeros((INT_MM_PROBE_DIM, INT_MM_PROBE_DIM), dtype=torch.int8, device=device)
    try:
        torch._int_mm(a, b)
    except RuntimeError as exc:
        return str(exc).strip().splitlines()[0]
    return ""


def int8_decode_path(session) -> dict:
    """int8dq's evidence of the matmul decode runs: torch._int_mm at the decode's row count, or
    LeverNotInEffect where torchao would fall back to a float32 matmul."""
    device = session.device
    if device.type not in SAFE_INT_MM_DEVICE_TYPES or "compile" in session.wrappers:
        return {}
    rows = session.batch_size
    refusal = int_mm_refusal(rows, device)
    if refusal:
        raise LeverNotInEffect(
            f"int8dq: torch._int_mm refuses decode's {rows} row(s) on {device} ({refusal}); torchao falls back "
            "to a float32 matmul there, which would be timed as int8"
        )
    return {"decode_matmul": f"torch._int_mm ({rows} rows)"}


def evidence(session, name: str) -> dict:
    quantized = getattr(session, "quantized", None)
    if quantized is None or quantized.scheme != name:
        raise LeverNotInEffect(f"{name}: the session runs an unquantized model")
    found = quantized.evidence()
    if found["replaced"] < 1:
        raise LeverNotInEffect(f"{name}: no linear layer was replaced ({found['kept_float']} kept float)")
    # torchao leaves a weight float, silently, when its shape does not suit the scheme (in_features
    # not a multiple of the group size): a partly quantized model's times are not the scheme's.
    if found["replaced"] < found["linears"]:
        raise LeverNotInEffect(f"{name}: only {found['replaced']} of {found['linears']} linear layers were replaced "
                               f"({found['kept_float']} kept float)")
    return {**found, **int8_decode_path(session)} if name == "int8dq" else found


def brief(found: dict) -> str:
    kinds = " ".join(f"{kind}x{count}" for kind, count in found["replaced_by"].items())
    return f"{found['replaced']}/{found['linears']} linears -> {kinds}"


def quant_lever(name: str, device_types=ALL_DEVICE_TYPES, dtypes=ALL_DTYPES) -> Lever:
    return Lever(
        name=name,
        slot="quantization",
        summary=scheme(name).summary,
        configure=partial(configure, name=name),
        evidence=partial(evidence, name=name),
        brief=brief,
        needs=NEEDS,
        device_types=frozenset(device_types),
        dtypes=frozenset(dtypes),
        tolerance=QUANT_TOLERANCE,
        unavailable=partial(unavailable, name),
    )


# Scheme notes (torchao 0.18): int8dq runs on the CPU here and, on CUDA, torchao's int8 matmul
# (torch._int_mm) path per its docs and code. int4wo (tinygemm `tile_packed_to_4d` layout) is
# CUDA and bfloat16 only: that layout asserts both, and a GPU of compute capability 8.0 or more;
# the default `plain` layout needs the mslk kernel package, `plain_int32` is for XPU/NPU, and no
# int4 layout runs on the CPU (all three tried here). torchao 0.18 has no autoquant API, so that
# lever is dropped at expansion with that reason; it is kept so that a torchao that has it runs it
# by name. int8wo runs on the CPU here (slower than float32 there, docs/facts.md). dynint8 is
# PyTorch's own dynamic quantization: CPU only (its quantized::linear_dynamic kernels, fbgemm /
# onednn, have no CUDA implementation), float modules only.
LEVERS = (
    quant_lever("int8dq"),
    quant_lever("int8wo"),
    quant_lever("int4wo", device_types={"cuda"}, dtypes={"bfloat16"}),
    quant_lever("autoquant", device_types={"cuda"}),
    quant_lever("dynint8", device_types={"cpu"}, dtypes={"float32"}),
)
