"""The cost of classifier-free guidance: text to image with three streams against one, interleaved."""

from __future__ import annotations

from harness.analyse.stats import median
from harness.families.chameleon.runner import ChameleonRunner
from harness.levers.plan import plan_for
from harness.spec.matrix import Case
from harness.spec.workload import Lengths


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
        found[f"{name}_tokens"] = runner.run(session, prepared).value.shape[1]  # untimed first call
        ready[name] = (runner, session, prepared)
    for index in range(pairs):
        order = ("guided", "single") if index % 2 == 0 else ("single", "guided")
        for name in order:
            runner, session, prepared = ready[name]
            metrics = runner.run(session, prepared).metrics
            found[f"{name}_e2e_s"].append(metrics["e2e_s"])
            found[f"{name}_tpot_s"].extend(metrics["tpot_s"])
    found["cfg_cost_ratio"] = median(found["guided_e2e_s"]) / median(found["single_e2e_s"])
    return found
