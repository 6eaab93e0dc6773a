"""The one table of model families. Each family is one package beside this module: its
`__init__` declares `SPEC` (tasks, stacks, workloads per preset, capabilities, and its model and
runner as "module:attribute" entry points, imported on first use), so reading the matrix imports
no torch. Adding a family: its package plus one line here (docs/adding-a-family.md).
"""

from __future__ import annotations

from harness.errors import unknown_choice
from harness.families import chameleon, hstu, llama, seamless
from harness.families.stacks import (
    DECODER_STACKS,
    DRAFT_FRIENDLY_STACKS,
    QUANT_SCHEMES,
    QUANT_STACKS,
    SPECULATIVE_STACKS,
    batch_sweep,
)
from harness.spec.matrix import FamilySpec

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (llama.SPEC, hstu.SPEC, chameleon.SPEC, seamless.SPEC)}

__all__ = [
    "DECODER_STACKS", "DRAFT_FRIENDLY_STACKS", "FAMILIES", "QUANT_SCHEMES", "QUANT_STACKS", "SPECULATIVE_STACKS",
    "batch_sweep", "family_spec",
]


def family_spec(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise unknown_choice("family", name, FAMILIES) from None
