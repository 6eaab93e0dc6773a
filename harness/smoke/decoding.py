"""Smoke checks of the levers on a tiny Llama: CUDA-graph replay against eager, compile, the
quantization kernels, and that quantizing leaves inductor's global configuration as it was."""

from __future__ import annotations

import torch

from harness.families.decoder import DecoderSession, clock_marks, decode_positions, generate
from harness.families.models import build_model
from harness.levers import LEVERS, LeverNotInEffect
from harness.levers.plan import plan_for
from harness.levers.quantization import int_mm_refusal
from harness.levers.quantize_model import quantized_copy
from harness.measure.clock import make_clock
from harness.smoke.base import Found, SmokeContext
from harness.spec.workload import prompt_ids

GRAPH_PROMPTS = (17, 64)  # two prompt lengths: the graph is captured once per session, replayed at both
GRAPH_TOKENS = 32
COMPILE_TOKENS = 8


def tiny_llama(ctx: SmokeContext):
    return build_model("llama", "tiny", ctx.dtype, ctx.device, ctx.seed)


def greedy(model, stack: tuple[str, ...], prompt_len: int, gen_len: int, ctx: SmokeContext, session=None):
    """Greedy tokens of one stack over a seeded prompt, and the session that made them (a new one,
    or `session` run again)."""
    session = session or DecoderSession(model, plan_for(stack), 1, prompt_len + gen_len)
    ids = prompt_ids(1, prompt_len, model.config.vocab_size, ctx.seed).to(ctx.device)
    positions = decode_positions(1, prompt_len, gen_len, ctx.device)
    found = generate(session, ids, positions, make_clock(ctx.device, clock_marks(gen_len)))
    return found.tokens, session


def check_graph_replay(ctx: SmokeContext) -> Found:
    """sdpa+static+cudagraphs gives the very tokens of sdpa+static (the same kernels, replayed)."""
    model = tiny_llama(ctx)
    figures: dict = {}
    for prompt_len in GRAPH_PROMPTS:
        eager, _ = greedy(model, ("sdpa", "static"), prompt_len, GRAPH_TOKENS, ctx)
        graphed, session = greedy(model, ("sdpa", "static", "cudagraphs"), prompt_len, GRAPH_TOKENS, ctx)
        stats = session.wrappers["cudagraphs"].stats()
        figures[f"p{prompt_len}"] = {"identical": bool(torch.equal(eager, graphed)), **stats}
    passed = all(f["identical"] and f["captures"] == 1 and f["replays"] == GRAPH_TOKENS - 1 for f in figures.values())
    detail = ", ".join(f"{name}: {'identical' if f['identical'] else 'DIFFERENT'} ({f['replays']} replays)"
                       for name, f in figures.items())
    return Found(passed, detail, figures)


def check_compile(ctx: SmokeContext) -> Found:
    """sdpa+static+compile compiles the decode step without graph breaks or recompiles while timed."""
    model = tiny_llama(ctx)
    LEVERS.reset_state([("compile",)])  # graphs of an earlier check would count as this one's
    reference, _ = greedy(model, ("sdpa", "static"), GRAPH_PROMPTS[0], COMPILE_TOKENS, ctx)
    stack = ("sdpa", "static", "compile")
    tokens, session = greedy(model, stack, GRAPH_PROMPTS[0], COMPILE_TOKENS, ctx)
    with session.timed():  # as a timed iteration: a recompile or graph break here raises
        greedy(model, stack, GRAPH_PROMPTS[0], COMPILE_TOKENS, ctx, session)
    try:
        evidence = LEVERS.get("compile").evidence(session)
    except LeverNotInEffect as exc:
        return Found(False, str(exc))
    agreement = float((tokens == reference).float().mean())
    figures = {**evidence, "token_agreement": agreement}
    passed = evidence["graph_breaks"] == 0 and evidence["recompiles_during_timing"] == 0
    return Found(passed, f"graphs {evidence['graphs']}, breaks {evidence['graph_breaks']}, recompiles while timed "
                 f"{evidence['recompiles_during_timing']}; tokens agree with sdpa+static at {agreement:.0%}", figures)


# The schemes a device runs (harness/levers/quantization.py LEVERS): each must replace every linear.
QUANT_SCHEMES = {"cpu": ("int8dq", "int8wo"), "cuda": ("int8dq", "int8wo", "int4wo")}


def check_quantization(ctx: SmokeContext) -> Found:
    """Each scheme replaces every linear of the tiny Llama, and the quantized model runs a forward."""
    model = tiny_llama(ctx)
    ids = prompt_ids(1, 8, model.config.vocab_size, ctx.seed).to(ctx.device)
    figures: dict[str, object] = {}
    for name in QUANT_SCHEMES[ctx.device.split(":")[0]]:
        quantized = quantized_copy(model, name)
        with torch.no_grad():
            logits = quantized.model(input_ids=ids).logits
        figures[name] = {**quantized.evidence(), "finite": bool(torch.isfinite(logits).all())}
        del quantized
    schemes = {name: found for name, found in figures.items() if isinstance(found, dict)}
    passed = all(f["replaced"] == f["linears"] and f["finite"] for f in schemes.values())
    detail = ", ".join(f"{name} {f['replaced']}/{f['linears']}" for name, f in schemes.items())
    # Recorded, not judged: whether eager int8dq can run int8 at one decode row on this device.
    figures["int_mm_one_row_refusal"] = int_mm_refusal(1, torch.device(ctx.device))
    return Found(passed, detail + f"; torch._int_mm at 1 row: {figures['int_mm_one_row_refusal'] or 'runs'}", figures)


def check_inductor_isolation(ctx: SmokeContext) -> Found:
    """A quantized copy leaves torch._inductor.config as it found it (compile results must not
    depend on whether a quantized case ran first)."""
    import torch._inductor.config as inductor_config

    before = inductor_config.get_config_copy()
    quantized_copy(tiny_llama(ctx), "int8dq")
    after = inductor_config.get_config_copy()
    changed = sorted(key for key in before if before[key] != after.get(key))
    return Found(not changed, f"changed: {changed}" if changed else "unchanged", {"changed": changed})
