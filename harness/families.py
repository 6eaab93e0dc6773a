"""The declared matrix: which tasks, stacks and workloads each family has, per preset.

Stacks are cumulative in the paper's spirit; the first one is the family's baseline.
Workload lengths here are this harness's choices (the paper's distributions are not public).
"""

from __future__ import annotations

from harness.errors import unknown_choice
from harness.matrix import FamilySpec, Workload
from harness.workload import Lengths

DECODER_STACKS = (
    ("eager",),
    ("sdpa",),
    ("sdpa", "static"),
    ("sdpa", "compile"),
    ("sdpa", "static", "compile"),
    ("sdpa", "static", "cudagraphs"),
    ("sdpa", "static", "compile", "cudagraphs"),
)

FAMILIES = {
    "llama": FamilySpec(
        name="llama",
        tasks=("tt",),
        stacks=DECODER_STACKS,
        workloads={
            "tiny": (
                Workload(1, Lengths(128, 64)),
                Workload(4, Lengths(32, 32)),
                Workload(1, Lengths(64, 32, dist="lognormal")),
            ),
            "small": (Workload(1, Lengths(512, 128)), Workload(8, Lengths(256, 64))),
            "paper-7b": (Workload(1, Lengths(1024, 256)), Workload(8, Lengths(1024, 256))),
            "paper": (Workload(1, Lengths(1024, 256)), Workload(1, Lengths(512, 256, dist="lognormal"))),
        },
    ),
}


def family_spec(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise unknown_choice("family", name, FAMILIES) from None
