"""What the harness's own loop costs: its TTFT and TPOT against a bare loop of the same forwards.

For every family with a decoder (Llama; Chameleon's text decode; SeamlessM4T's text decoder,
greedy) the harness side is the family's runner exactly as a matrix case runs it (`runner.run`:
its clock marks, its token choice, its stage bookkeeping), and the bare side is the same model's
forwards written out the way a serving engine runs them: the LM head on the last position only,
a greedy argmax, two timestamps (first token, last token) and nothing else. For Llama a third
side is transformers' `generate()` on the same model (greedy, `min_new_tokens` equal to
`max_new_tokens` so that lengths match), timed per token through a streamer.

The sides run interleaved in one run (harness.measure.pairs.run_rounds), each once untimed
first; the figures are ratios harness / other (> 1: the harness is slower) of TTFT and of TPOT,
each the Hodges-Lehmann estimate over the per-round log ratios with the interval that inverts
the Wilcoxon signed-rank test (harness.analyse.intervals.paired_speedup_interval). Nothing here
asserts a wall-clock limit: the suite reports the ratios (suites/test_overhead.py,
docs/overhead.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean

import torch

from harness.analyse.ladder import paired_speedup_interval
from harness.analyse.stats import median
from harness.measure.clock import make_clock
from harness.measure.pairs import run_rounds
from harness.spec.matrix import Case
from harness.spec.workload import Lengths

METRICS = ("ttft_s", "tpot_s")
DECODER_FAMILIES = ("llama", "chameleon", "seamless")  # the families whose runners decode tokens


@dataclass(frozen=True)
class Timed:
    """One generation's figures: seconds to the first token, mean seconds per later token, tokens."""

    ttft_s: float
    tpot_s: float  # (last token - first token) / (tokens - 1)
    tokens: torch.Tensor  # [batch, gen_len], on the CPU


@dataclass
class Subject:
    """One family's sides over one model and one input: each a zero-argument timed generation."""

    family: str
    sides: dict[str, Callable[[], Timed]]  # "harness" first, then "bare" (and "generate" for Llama)


@torch.no_grad()
def bare_loop(device: torch.device, first: Callable[[], torch.Tensor], step: Callable, steps: Sequence) -> Timed:
    """`first()` (the prefill and its greedy token), then `step(token, item)` for each of `steps`;
    a clock mark after the first token and one after the last, nothing in between."""
    clock = make_clock(str(device), 2)
    clock.start()
    token = first()
    clock.mark("first")
    tokens = [token]
    for item in steps:
        token = step(token, item)
        tokens.append(token)
    clock.mark("last")
    first_s, last_s = clock.elapsed_s()
    return Timed(first_s, (last_s - first_s) / max(len(steps), 1), torch.cat(tokens, dim=1).cpu())


def harness_side(runner, session, inputs, tokens_of: Callable = lambda value: value) -> Callable[[], Timed]:
    """The runner's own timed generation, as a matrix case runs it."""

    def run() -> Timed:
        output = runner.run(session, inputs)
        tpot_s = output.metrics["tpot_s"]
        return Timed(output.metrics["ttft_s"], fmean(tpot_s) if tpot_s else 0.0, tokens_of(output.value))

    return run


# -- one subject per family ----------------------------------------------------------------------
def overhead_case(family: str, preset: str, dtype: str, lengths: Lengths, stack: tuple[str, ...]) -> Case:
    """The case a family's overhead is measured on: batch 1, its text-to-text task, greedy."""
    return Case(family, "tt", preset, dtype, 1, lengths, stack, beams=1 if family == "seamless" else 0)


def llama_subject(model, device: str, seed: int, case: Case, with_generate: bool = True) -> Subject:
    from harness.families.decoder import DecoderRunner
    from harness.levers.plan import plan_for

    runner = DecoderRunner(case, model, device, seed)
    session = runner.session(plan_for(case.stack))
    ids, positions = runner.inputs((case.lengths.prompt_len, case.lengths.gen_len))
    prefill_positions = torch.arange(ids.shape[1], device=session.device).expand(ids.shape[0], -1)

    def bare() -> Timed:
        session.reset()
        cache, net = session.cache, session.model

        def forward(tokens: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
            logits = net(input_ids=tokens, cache=cache, position_ids=position, logits_to_keep=1).logits
            return logits[:, -1].argmax(-1, keepdim=True)

        return bare_loop(session.device, lambda: forward(ids, prefill_positions), forward, positions)

    sides = {"harness": harness_side(runner, session, (ids, positions)), "bare": bare}
    if with_generate:
        sides["generate"] = lambda: generate_side(session, ids, case.lengths.gen_len)
    return Subject("llama", sides)


class TokenTimes:
    """A transformers streamer that stamps the time of each `put`: the prompt first, then each
    new token (generate hands them over on the host, after the step that chose them)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def put(self, value) -> None:
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


@torch.no_grad()
def generate_side(session, ids: torch.Tensor, gen_len: int) -> Timed:
    """transformers' generate() on the session's model: greedy, exactly gen_len new tokens."""
    streamer = TokenTimes()
    extra = {"cache_implementation": "static"} if session.plan.cache == "static" else {}
    mask = torch.ones_like(ids)
    synchronize = torch.cuda.synchronize if session.device.type == "cuda" else (lambda: None)
    synchronize()
    started = time.perf_counter()
    out = session.model.generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=gen_len, min_new_tokens=gen_len, do_sample=False,
        pad_token_id=session.model.config.eos_token_id, streamer=streamer, **extra,
    )
    first_s, last_s = streamer.stamps[1] - started, streamer.stamps[-1] - started
    return Timed(first_s, (last_s - first_s) / max(gen_len - 1, 1), out[:, ids.shape[1] :].cpu())


def chameleon_subject(model, device: str, seed: int, case: Case) -> Subject:
    from harness.families.chameleon.runner import ChameleonRunner
    from harness.levers.plan import plan_for

    runner = ChameleonRunner(case, model, device, seed)
    session = runner.session(plan_for(case.stack))
    prepared = runner.inputs((case.lengths.prompt_len, case.lengths.gen_len))
    ids = prepared.head
    prefill_positions = torch.arange(ids.shape[1], device=session.device).expand(ids.shape[0], -1)
    image_mask = runner.image_mask  # text tasks never emit image tokens

    def bare() -> Timed:
        session.reset()
        cache, net = session.cache, session.model

        def forward(tokens: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
            hidden = net.model(input_ids=tokens, cache=cache, position_ids=position).last_hidden_state
            logits = net.lm_head(hidden[:, -1]).float()
            return logits.masked_fill(image_mask, float("-inf")).argmax(-1, keepdim=True)

        return bare_loop(session.device, lambda: forward(ids, prefill_positions), forward, prepared.positions)

    return Subject("chameleon", {"harness": harness_side(runner, session, prepared), "bare": bare})


def seamless_subject(model, device: str, seed: int, case: Case) -> Subject:
    from harness.families.seamless.runner import SeamlessRunner
    from harness.levers.plan import plan_for

    runner = SeamlessRunner(case, model, device, seed)
    session = runner.session(plan_for(case.stack))
    prepared = runner.inputs((case.lengths.prompt_len, case.lengths.gen_len))

    def bare() -> Timed:
        session.reset()
        kv, net = session.kv, session.model
        encoded: list[torch.Tensor] = []

        def forward(tokens: torch.Tensor, _index=None) -> torch.Tensor:
            hidden = net.text_decoder(input_ids=tokens, encoder_hidden_states=encoded[0], cache=kv, use_cache=True).last_hidden_state
            return net.lm_head(hidden[:, -1]).argmax(-1, keepdim=True)

        def first() -> torch.Tensor:  # the harness's TTFT counts the text encoder too
            encoded.append(net.text_encoder(input_ids=prepared.source).last_hidden_state)
            return forward(prepared.prefix)

        return bare_loop(session.device, first, forward, range(prepared.gen_len - 1))

    harness = harness_side(runner, session, prepared, tokens_of=lambda value: value.text)
    return Subject("seamless", {"harness": harness, "bare": bare})


SUBJECTS: dict[str, Callable[..., Subject]] = {"llama": llama_subject, "chameleon": chameleon_subject, "seamless": seamless_subject}


# -- the measurement -----------------------------------------------------------------------------
def measure_overhead(subject: Subject, rounds: int) -> dict:
    """Every side once untimed (and their tokens compared with the harness's), then `rounds`
    interleaved rounds. Returns each side's raw TTFT and TPOT samples, their medians, and per
    other side the ratios harness / other with their intervals (None bounds: too few rounds)."""
    sides = subject.sides
    first = {name: side() for name, side in sides.items()}
    reference = first["harness"].tokens
    found: dict = {
        "rounds": rounds,
        "tokens": list(reference.shape),
        "tokens_match": {name: bool(torch.equal(timed.tokens, reference)) for name, timed in first.items() if name != "harness"},
    }
    runs = run_rounds(sides, rounds)
    found["deterministic"] = all(torch.equal(one.tokens, first[name].tokens) for name, timed in runs.items() for one in timed)
    for name, timed in runs.items():
        for metric in METRICS:
            samples = [getattr(one, metric) for one in timed]
            found[f"{name}_{metric}"] = samples
            found[f"{name}_{metric}_p50"] = median(samples) if samples else None
    for other in list(sides)[1:]:
        for metric in METRICS:
            key = f"{metric.removesuffix('_s')}_ratio_vs_{other}"
            harness, theirs = found[f"harness_{metric}"], found[f"{other}_{metric}"]
            interval = paired_speedup_interval(harness, theirs) if rounds else None
            found[key] = interval.estimate if interval else None
            found[f"{key}_low"] = interval.low if interval else None
            found[f"{key}_high"] = interval.high if interval else None
    return found


def ratio_text(found: dict, metric: str, other: str) -> str:
    """"1.02x [0.99, 1.04]" (harness / other), or the estimate alone without an interval."""
    key = f"{metric}_ratio_vs_{other}"
    estimate, low, high = found.get(key), found.get(f"{key}_low"), found.get(f"{key}_high")
    if estimate is None:
        return "n/a"
    bounds = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else " (no interval: too few rounds)"
    return f"{estimate:.3f}x{bounds}"


def summary_line(found: dict, label: str) -> str:
    """The run summary's note: per side the p50s, then the ratios with their intervals."""
    def ms(seconds):
        return f"{1e3 * seconds:.3f}" if seconds is not None else "n/a"
    ratio_keys = [key for key in found if key.startswith("ttft_ratio_vs_") and not key.endswith(("_low", "_high"))]
    others = [key.removeprefix("ttft_ratio_vs_") for key in ratio_keys]
    sides = ["harness", *others]
    p50s = "; ".join(f"{side} TTFT {ms(found[f'{side}_ttft_s_p50'])} ms, TPOT {ms(found[f'{side}_tpot_s_p50'])} ms" for side in sides)
    ratios = "; ".join(
        f"harness/{other}: TTFT {ratio_text(found, 'ttft', other)}, TPOT {ratio_text(found, 'tpot', other)}" for other in others
    )
    return f"overhead {label}, {found['rounds']} interleaved rounds: {p50s}; {ratios}"
