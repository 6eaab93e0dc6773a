"""The cost of classifier-free guidance: text to image with three streams against one, interleaved."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from harness.families.chameleon.runner import ChameleonRunner
from harness.levers.plan import plan_for
from harness.measure.pairs import ratio_of_medians, run_pairs
from harness.spec.matrix import Case
from harness.spec.workload import Lengths

if TYPE_CHECKING:
    import torch


def measure_cfg_cost(model, device: str, seed: int, workload, gen_len: int, stack: tuple[str, ...], pairs: int) -> dict:
    """Text to image with guidance (three streams) and without (one stream), same prompt and
    stack, in interleaved pairs so that machine noise hits both alike. Ratio > 1 = CFG's cost."""
    case = Case("chameleon", "ti", "", "float32", workload.batch_size, Lengths(workload.lengths.prompt_len, gen_len), stack)
    runners = {"guided": ChameleonRunner(case, model, device, seed), "single": ChameleonRunner(case, model, device, seed, None)}
    found: dict = {f"{name}_{key}": [] for name in runners for key in ("e2e_s", "tpot_s")}
    ready = {}
    for name, runner in runners.items():
        session = runner.session(plan_for(stack))
        prepared = runner.inputs((workload.lengths.prompt_len, gen_len))
        tokens = cast("torch.Tensor", runner.run(session, prepared).value)  # untimed first call
        found[f"{name}_tokens"] = tokens.shape[1]
        ready[name] = partial(timed, runner, session, prepared)
    for name, runs in run_pairs(ready, pairs).items():
        found[f"{name}_e2e_s"] = [e2e_s for e2e_s, _ in runs]
        found[f"{name}_tpot_s"] = [seconds for _, tpot_s in runs for seconds in tpot_s]
    found["cfg_cost_ratio"] = ratio_of_medians(found["guided_e2e_s"], found["single_e2e_s"])
    return found


def timed(runner: ChameleonRunner, session, prepared) -> tuple[float, list[float]]:
    """One timed run's samples: its end-to-end time and its per-token decode times."""
    metrics = runner.run(session, prepared).metrics
    return metrics["e2e_s"], metrics["tpot_s"]
