"""Validated run selection: options -> device, dtypes, families, stacks, and the expanded matrix."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import unknown_choice
from harness.families import FAMILIES, family_spec
from harness.matrix import Case, Dropped, check_stack_names, expand
from harness.options import RunOptions, check_counts, resolve_device, resolve_dtypes, split_list


@dataclass(frozen=True)
class Selection:
    options: RunOptions
    device: str
    dtypes: tuple[str, ...]
    families: tuple[str, ...]
    stacks: tuple[str, ...]

    def expand(self, family: str) -> tuple[list[Case], list[Dropped]]:
        return expand(family_spec(family), self.options.preset, self.dtypes, self.device, self.stacks)

    def expand_all(self) -> tuple[list[Case], list[Dropped]]:
        cases, dropped = [], []
        for family in self.families:
            more_cases, more_dropped = self.expand(family)
            cases += more_cases
            dropped += more_dropped
        return cases, dropped


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
    stacks = split_list(options.stacks)
    check_stack_names(stacks, {name: FAMILIES[name] for name in families})
    return Selection(options, device, resolve_dtypes(options.dtype, device), families, stacks)
