"""What the in-place KV-cache reorder buys in beam search: with and without it, interleaved."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from harness.families.seamless.runner import SeamlessRunner, compare
from harness.levers.plan import plan_for
from harness.measure.pairs import ratio_of_medians, run_pairs


def measure_reorder_speedup(model, device: str, seed: int, case, draw: tuple[int, int], pairs: int) -> dict:
    """One beam case under `sdpa+static` (index_select reorder) and with `inplace-reorder` added,
    same inputs, in interleaved pairs so that machine noise hits both alike. Ratios > 1: the
    in-place reorder is faster (end to end, and the reorder stage alone)."""
    stacks = {"index_select": ("sdpa", "static"), "inplace": ("sdpa", "static", "inplace-reorder")}
    found: dict = {f"{name}_{key}": [] for name in stacks for key in ("e2e_s", "kv_reorder_s")}
    ready = {}
    for name, stack in stacks.items():
        runner = SeamlessRunner(replace(case, stack=stack), model, device, seed)
        session, prepared = runner.session(plan_for(stack)), runner.inputs(draw)
        found[f"{name}_value"] = runner.run(session, prepared).value  # untimed first call
        ready[name] = partial(timed, runner, session, prepared)
    found["outputs_match"] = compare(found.pop("index_select_value"), found.pop("inplace_value")) is None
    for name, runs in run_pairs(ready, pairs).items():
        for key in ("e2e_s", "kv_reorder_s"):
            found[f"{name}_{key}"] = [run[key] for run in runs]
    for key in ("e2e_s", "kv_reorder_s"):
        found[f"speedup_{key}"] = ratio_of_medians(found[f"index_select_{key}"], found[f"inplace_{key}"])
    return found


def timed(runner: SeamlessRunner, session, prepared) -> dict[str, float]:
    """One timed run's samples: its end-to-end time and its reorder stage's."""
    output = runner.run(session, prepared)
    return {"e2e_s": output.metrics["e2e_s"], "kv_reorder_s": output.stages_s["kv_reorder_s"]}
