"""The case matrix: families x tasks x presets x dtypes x workloads x stacks, as data.

Impossible cells are dropped here, at expansion, each with its reason; never at run time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from harness.errors import unknown_choice
from harness.levers import LEVERS, case_unavailable_reason, stack_name, unavailable_reason
from harness.workload import Lengths

DTYPE_TOKENS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class Workload:
    batch_size: int
    lengths: Lengths
    tasks: tuple[str, ...] = ()  # the tasks this workload is for; () = every task of the family
    items: int = 0  # rows of the item table a recommender case uses (0: not a recommender case)
    beams: int = 0  # beam-search width (1 = greedy; 0: a family without a beam axis)


@dataclass(frozen=True)
class FamilySpec:
    """What a family declares: its tasks, its stacks (baseline first) and workloads per preset."""

    name: str
    tasks: tuple[str, ...]
    stacks: tuple[tuple[str, ...], ...]
    workloads: Mapping[str, tuple[Workload, ...]] = field(default_factory=dict)
    runner: str = "decoder"  # harness.runners.runner_class

    @property
    def baseline(self) -> tuple[str, ...]:
        return self.stacks[0]


@dataclass(frozen=True)
class Case:
    family: str
    task: str
    preset: str
    dtype: str
    batch_size: int
    lengths: Lengths
    stack: tuple[str, ...]
    items: int = 0  # Workload.items
    beams: int = 0  # Workload.beams

    @property
    def beams_token(self) -> str:
        """The beam axis in the case id: greedy or beamN ("" for families without the axis)."""
        return {0: "", 1: "-greedy"}.get(self.beams, f"-beam{self.beams}")

    @property
    def stack_name(self) -> str:
        return stack_name(self.stack)

    @property
    def workload_id(self) -> str:
        """Everything but the stack: cases sharing it share a baseline and expected outputs."""
        dtype = DTYPE_TOKENS[self.dtype]
        items = f"-i{self.items}" if self.items else ""
        return f"{self.family}-{self.task}-{self.preset}-b{self.batch_size}-{self.lengths.token}{items}{self.beams_token}-{dtype}"

    @property
    def id(self) -> str:
        return f"{self.workload_id}-{self.stack_name}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stack"] = list(self.stack)
        if not self.items:
            del data["items"]  # cases without an item table keep the dicts (and fingerprints) they had
        if not self.beams:
            del data["beams"]  # likewise for cases without a beam axis
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "Case":
        fields_ = dict(data)
        fields_["lengths"] = Lengths(**fields_["lengths"])
        fields_["stack"] = tuple(fields_["stack"])
        return cls(**fields_)


@dataclass(frozen=True)
class Dropped:
    case_id: str
    reason: str


def fingerprint(case: Case, model_config: Mapping) -> str:
    """Changes whenever the case's definition or its model's shape changes."""
    payload = json.dumps({"case": case.to_dict(), "model": dict(model_config)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_stack_names(stacks: tuple[str, ...], known: Mapping[str, FamilySpec]) -> None:
    declared = {stack_name(s) for spec in known.values() for s in spec.stacks}
    for name in stacks:
        for lever in name.split("+"):
            LEVERS.get(lever)  # an unknown lever name fails loudly, naming the allowed ones
        if name not in declared:
            raise unknown_choice("stack", name, declared)


def expand(
    spec: FamilySpec,
    preset: str,
    dtypes: tuple[str, ...],
    device: str,
    only_stacks: tuple[str, ...] = (),
) -> tuple[list[Case], list[Dropped]]:
    """All cells of one family for this preset and device; dropped ones carry a reason."""
    if preset not in spec.workloads:
        raise unknown_choice(f"preset for {spec.name}", preset, spec.workloads)
    cases: list[Case] = []
    dropped: list[Dropped] = []
    # dtype varies slowest so that one built model serves a run of consecutive cases
    for dtype in dtypes:
        for task in spec.tasks:
            for workload in spec.workloads[preset]:
                if workload.tasks and task not in workload.tasks:
                    continue
                for stack in spec.stacks:
                    if only_stacks and stack_name(stack) not in only_stacks:
                        continue
                    case = Case(
                        spec.name, task, preset, dtype, workload.batch_size, workload.lengths, stack, workload.items,
                        workload.beams,
                    )
                    reason = unavailable_reason(stack, spec.name, device) or case_unavailable_reason(stack, case)
                    if reason:
                        dropped.append(Dropped(case.id, reason))
                    else:
                        cases.append(case)
    return cases, dropped
