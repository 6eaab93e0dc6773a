"""Validated run selection: options -> device, dtypes, families, stacks, and the expanded matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from harness.analyse.policy import Policy, device_policy
from harness.analyse.verdict import UNJUDGED
from harness.errors import HarnessError, unknown_choice
from harness.families import FAMILIES, batch_sweep, family_spec
from harness.levers import LEVERS
from harness.options import RunOptions, check_counts, parse_batch_sizes, resolve_device, resolve_dtypes, split_list
from harness.spec.matrix import Case, Dropped, check_stack_names, expand
from harness.store.machine import ENV_FIELDS


@dataclass(frozen=True)
class Selection:
    options: RunOptions
    device: str
    dtypes: tuple[str, ...]
    families: tuple[str, ...]
    stacks: tuple[str, ...]
    policy: Policy
    allowed_env: tuple[str, ...]
    batch_sizes: tuple[int, ...] = field(default=())  # () = each workload's own batch size
    allowed_unjudged: tuple[str, ...] = field(default=())  # verdict kinds the gate accepts (--allow-unjudged)

    def expand(self, family: str) -> tuple[list[Case], list[Dropped]]:
        # Every case, declared or from a batch-size sweep, is checked against the memory estimate
        # before anything is built: one that would not fit is dropped with the estimate as its reason.
        from harness.spec.fit import capacity_bytes, does_not_fit

        fits = partial(does_not_fit, capacity=capacity_bytes(self.device))
        params = lever_params(self.options, family)
        cases, dropped = expand(
            family_spec(family), self.options.preset, self.dtypes, self.device, self.stacks, self.batch_sizes, fits, params
        )
        if self.options.checkpoint_dir:  # synthetic weight variants change random weights only
            dropped += [Dropped(c.id, f"{c.weights} weights are synthetic; not applied to --checkpoint-dir") for c in cases if c.weights]
            cases = [c for c in cases if not c.weights]
        return cases, dropped

    def expand_all(self) -> tuple[list[Case], list[Dropped]]:
        cases, dropped = [], []
        for family in self.families:
            more_cases, more_dropped = self.expand(family)
            cases += more_cases
            dropped += more_dropped
        return cases, dropped


def lever_params(options: RunOptions, family: str) -> dict[str, int]:
    """Values of the levers' parameters (Lever.params) for this family's cases; exit_layer 0
    resolves to half the preset's layers (a loaded checkpoint's depth is checked at run time)."""
    values = {name: getattr(options, name) for name in LEVERS.param_tokens()}
    if any("exit_layer" in LEVERS.get(lever).params for stack in FAMILIES[family].stacks for lever in stack):
        from harness.families.models import model_config  # the preset's depth: its config (transformers)

        layers = model_config(family, options.preset).num_hidden_layers
        values["exit_layer"] = values["exit_layer"] or max(1, layers // 2)
        if values["exit_layer"] >= layers and not options.checkpoint_dir:
            raise HarnessError(
                f"--exit-layer {values['exit_layer']} leaves no layer to skip in {family} {options.preset} ({layers} layers)"
            )
    return values


def families_with_preset(preset: str) -> tuple[str, ...]:
    """Without --families, the families that declare this preset (presets differ per family:
    `paper-7b` is Llama's, `paper-ml1m` HSTU's); all of them when none does, so the error names it."""
    return tuple(name for name, spec in FAMILIES.items() if preset in spec.workloads) or tuple(FAMILIES)


def select(options: RunOptions, cuda_available: bool) -> Selection:
    """Validate every option against the registries; raises HarnessError with one clear line."""
    check_counts(options)
    device = resolve_device(options.device, cuda_available)
    families = split_list(options.families) or families_with_preset(options.preset)
    for family in families:
        spec = family_spec(family)
        if options.preset not in spec.workloads:
            raise unknown_choice(f"preset for {family}", options.preset, spec.workloads)
    for family in families:
        lever_params(options, family)  # a bad --exit-layer fails here, before collection
    stacks = split_list(options.stacks)
    check_stack_names(stacks, {name: FAMILIES[name] for name in families})
    policy = device_policy(device, options.alpha, options.normalize, options.thresholds)
    if not 0 < options.alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1, got {options.alpha}")
    allowed_env = allowed_env_fields(options.allow_env_diff)
    batch_sizes = parse_batch_sizes(options.batch_sizes, batch_sweep(options.preset))
    return Selection(
        options, device, resolve_dtypes(options.dtype, device), families, stacks, policy, allowed_env, batch_sizes,
        allowed_unjudged_kinds(options.allow_unjudged),
    )


def allowed_env_fields(text: str) -> tuple[str, ...]:
    """--allow-env-diff as field names; an unknown field fails loudly."""
    names = split_list(text)
    for name in names:
        if name not in ENV_FIELDS:
            raise unknown_choice("environment field", name, ENV_FIELDS)
    return names


ALLOW_ALL = "all"


def allowed_unjudged_kinds(text: str) -> tuple[str, ...]:
    """--allow-unjudged as verdict kinds (`all`: every one); an unknown name fails loudly."""
    names = split_list(text)
    for name in names:
        if name not in (*UNJUDGED, ALLOW_ALL):
            raise unknown_choice("--allow-unjudged kind", name, (*UNJUDGED, ALLOW_ALL))
    return UNJUDGED if ALLOW_ALL in names else names
