"""How much the harness's per-token timing adds over a bare loop of the same forwards."""

from __future__ import annotations

import time
from functools import partial

import torch

from harness.measure.clock import make_clock
from harness.families.decoder import DecoderSession, generate
from harness.measure.pairs import ratio_of_medians, run_pairs


@torch.no_grad()
def bare_decode_s(session: DecoderSession, input_ids: torch.Tensor, positions: list[torch.Tensor]) -> float:
    """Decode time of the same forwards with no per-token bookkeeping at all."""
    session.reset()
    token = session.prefill(input_ids)
    step = session.decode_step
    synchronize = torch.cuda.synchronize if session.device.type == "cuda" else (lambda: None)
    synchronize()
    started = time.perf_counter()
    for position in positions:
        token = step(token, position)
    synchronize()
    return time.perf_counter() - started


def harness_decode_s(session: DecoderSession, input_ids: torch.Tensor, positions: list[torch.Tensor]) -> float:
    marks = generate(session, input_ids, positions, make_clock(str(session.device), len(positions) + 1)).marks_s
    return marks[-1] - marks[0]


def measure_overhead(session: DecoderSession, input_ids, positions, pairs: int) -> dict:
    """Interleaved pairs (so machine noise hits both alike); ratio of medians, > 1 = overhead."""
    sides = {"harness_decode_s": harness_decode_s, "bare_decode_s": bare_decode_s}
    found = run_pairs({name: partial(decode_s, session, input_ids, positions) for name, decode_s in sides.items()}, pairs)
    return {**found, "overhead_ratio": ratio_of_medians(found["harness_decode_s"], found["bare_decode_s"])}
