"""The one table of model families. Each family is one package beside this module: its
`__init__` declares `SPEC` (tasks, stacks, workloads per preset, capabilities, and its model and
runner as "module:attribute" entry points, imported on first use), so reading the matrix imports
no torch. Adding a family: its package plus one line here (docs/adding-a-family.md).
"""

from __future__ import annotations

from importlib import import_module

from harness.errors import unknown_choice
from harness.families.stacks import (
    DECODER_STACKS,
    DRAFT_FRIENDLY_STACKS,
    QUANT_SCHEMES,
    QUANT_STACKS,
    SPECULATIVE_STACKS,
    batch_sweep,
)
from harness.spec.matrix import FamilySpec

# The one table: each name is a package beside this module that declares SPEC. Order is the order
# of tables and runs.
FAMILY_PACKAGES = ("llama", "hstu", "chameleon", "seamless")
FAMILIES: dict[str, FamilySpec] = {name: import_module(f"harness.families.{name}").SPEC for name in FAMILY_PACKAGES}

__all__ = [
    "DECODER_STACKS", "DRAFT_FRIENDLY_STACKS", "FAMILIES", "QUANT_SCHEMES", "QUANT_STACKS", "SPECULATIVE_STACKS",
    "batch_sweep", "family_spec",
]


def family_spec(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise unknown_choice("family", name, FAMILIES) from None
