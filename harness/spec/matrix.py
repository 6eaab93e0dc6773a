"""The case matrix: families x tasks x presets x dtypes x workloads x stacks, as data.

Impossible cells are dropped here, at expansion, each with its reason; never at run time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace

from harness.errors import unknown_choice
from harness.levers import LEVERS, case_unavailable_reason, stack_name, unavailable_reason
from harness.spec.weights import weight_variant
from harness.spec.workload import Lengths

DTYPE_TOKENS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class Workload:
    batch_size: int
    lengths: Lengths
    tasks: tuple[str, ...] = ()  # the tasks this workload is for; () = every task of the family
    items: int = 0  # rows of the item table a recommender case uses (0: not a recommender case)
    weights: str = ""  # a synthetic weight variant (harness/spec/weights.py); "" = random or --checkpoint-dir
    stacks: tuple[tuple[str, ...], ...] = ()  # of the family's stacks, the ones this workload runs; () = all
    beams: int = 0  # beam-search width (1 = greedy; 0: a family without a beam axis)
    # of this workload's stacks, the ones that run only when named by --stacks (dropped otherwise,
    # with OPT_IN_REASON), as FamilySpec.opt_in but for one workload that costs more than the rest
    opt_in: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class TaskShape:
    """What a task takes in and gives out, as modality names ("text", "image", "speech")."""

    inputs: frozenset[str]
    outputs: frozenset[str]

    @property
    def image_in(self) -> bool:
        return "image" in self.inputs

    @property
    def image_out(self) -> bool:
        return "image" in self.outputs

    @property
    def speech_in(self) -> bool:
        return "speech" in self.inputs

    @property
    def speech_out(self) -> bool:
        return "speech" in self.outputs


@dataclass(frozen=True)
class FamilySpec:
    """What a family declares: its tasks, its stacks (baseline first), workloads per preset, the
    capabilities levers may need (harness.levers.Lever.needs), and its model builders and runner
    as "module:attribute" entry points (harness.lazy.resolve), imported only when a case runs."""

    name: str
    tasks: tuple[str, ...]
    stacks: tuple[tuple[str, ...], ...]
    workloads: Mapping[str, tuple[Workload, ...]] = field(default_factory=dict)
    # preset -> stacks of `stacks` that run there only when named by --stacks (dropped otherwise,
    # with OPT_IN_REASON): what would cost CI too much on that preset
    opt_in: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    models: str = ""  # entry point of its harness.families.models.FamilyModels
    runner: str = ""  # entry point of its Runner class (harness.families.base.Runner)
    fit: str = ""  # its memory estimator in harness.spec.fit.ESTIMATORS ("": none, so nothing is dropped on a guess)
    fit_rows: str = ""  # decoders: entry point of (Case) -> (rows, extra prompt tokens); "": (batch size, 0)
    # How this family's cases' metrics are measured, for a family whose definition changed since its
    # first baselines: folded into the fingerprint, so that a baseline or history recorded under the
    # old definition reads no_baseline rather than a change of speed (0: never redefined).
    measurement_version: int = 0
    # entry point of (harness.measure.profile.sol.SolInput) -> {phase: one speed-of-light fraction per
    # timed iteration} ("": no sol_frac); Llama-shaped decoders: harness.measure.profile.sol:decoder_sol
    sol: str = ""

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
    weights: str = ""  # Workload.weights
    params: tuple[tuple[str, int], ...] = ()  # the stack's lever parameters (Lever.params), e.g. draft_len
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
        weights = f"-{weight_variant(self.weights).token}" if self.weights else ""
        return f"{self.family}-{self.task}-{self.preset}-b{self.batch_size}-{self.lengths.token}{items}{self.beams_token}-{dtype}{weights}"

    @property
    def id(self) -> str:
        tokens = LEVERS.param_tokens()
        params = "".join(f"-{tokens.get(name, name)}{value}" for name, value in self.params)
        return f"{self.workload_id}-{self.stack_name}{params}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stack"] = list(self.stack)
        data["params"] = dict(self.params)
        if self.weights:  # the variant's own numbers too: changing its scale changes the fingerprint
            data["weights_params"] = weight_variant(self.weights).params()
        if self.lengths.scale == 1.0:
            del data["lengths"]["scale"]  # lengths without a scale keep the dicts (and fingerprints) they had
        if self.lengths.table is not None:  # an empirical kind: its table's content too, as for weights
            data["lengths_table"] = self.lengths.table.digest()
        for name in ("items", "weights", "params", "beams"):
            if not data[name]:
                del data[name]  # cases without them (beams: families without a beam axis) keep the dicts (and fingerprints) they had
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Case:
        fields_ = dict(data)
        fields_.pop("weights_params", None)
        fields_.pop("lengths_table", None)
        fields_["lengths"] = Lengths(**fields_["lengths"])
        fields_["stack"] = tuple(fields_["stack"])
        fields_["params"] = tuple(fields_.get("params", {}).items())
        return cls(**fields_)


@dataclass(frozen=True)
class Dropped:
    case_id: str
    reason: str


def fingerprint(case: Case, model_config: Mapping, measurement_version: int = 0) -> str:
    """Changes whenever the case's definition, its model's shape or its family's measurement
    definition (FamilySpec.measurement_version; 0 keeps the fingerprints a family always had)."""
    data: dict[str, object] = {"case": case.to_dict(), "model": dict(model_config)}
    if measurement_version:
        data["measurement"] = measurement_version
    payload = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def stack_params(stack: tuple[str, ...], values: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """(name, value) of each parameter the stack's levers read, in lever order."""
    names = [name for lever in stack for name in LEVERS.get(lever).params]
    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(f"no value for lever parameter(s) {', '.join(missing)} of stack {stack_name(stack)}")
    return tuple((name, values[name]) for name in dict.fromkeys(names))


def check_stack_names(stacks: tuple[str, ...], known: Mapping[str, FamilySpec]) -> None:
    declared = {stack_name(s) for spec in known.values() for s in spec.stacks}
    for name in stacks:
        for lever in name.split("+"):
            LEVERS.get(lever)  # an unknown lever name fails loudly, naming the allowed ones
        if name not in declared:
            raise unknown_choice("stack", name, declared)


OPT_IN_REASON = "left out of this preset's default matrix (costly in CI); name it with --stacks to run it"


def with_batch_sizes(workloads: tuple[Workload, ...], batch_sizes: tuple[int, ...]) -> tuple[Workload, ...]:
    """Each workload at each batch size (the batch-size axis); () keeps each one's own size.
    Workloads that differ only in batch size collapse into one per size."""
    if not batch_sizes:
        return workloads
    return tuple(dict.fromkeys(replace(w, batch_size=size) for w in workloads for size in batch_sizes))


def expand(
    spec: FamilySpec,
    preset: str,
    dtypes: tuple[str, ...],
    device: str,
    only_stacks: tuple[str, ...] = (),
    batch_sizes: tuple[int, ...] = (),
    does_not_fit: Callable[[Case], str] | None = None,
    lever_params: Mapping[str, int] | None = None,
) -> tuple[list[Case], list[Dropped]]:
    """All cells of one family for this preset and device; dropped ones carry a reason.

    `does_not_fit(case)`: why a case would not fit the device's memory ("" if it does).
    `lever_params` gives each Lever.params name its value (RunOptions); a stack's cases carry
    those of its levers."""
    if preset not in spec.workloads:
        raise unknown_choice(f"preset for {spec.name}", preset, spec.workloads)
    cases: list[Case] = []
    dropped: list[Dropped] = []
    for workload, case in declared_cells(spec, preset, dtypes, only_stacks, batch_sizes, lever_params or {}):
        reason = drop_reason(spec, workload, case, device, only_stacks, does_not_fit)
        if reason:
            dropped.append(Dropped(case.id, reason))
        else:
            cases.append(case)
    return cases, dropped


def declared_cells(
    spec: FamilySpec, preset: str, dtypes: tuple[str, ...], only_stacks: tuple[str, ...],
    batch_sizes: tuple[int, ...], lever_params: Mapping[str, int],
) -> Iterator[tuple[Workload, Case]]:
    """Every cell the family declares for this preset (and the --stacks filter), runnable or not,
    with the workload it comes from."""
    # dtype varies slowest so that one built model serves a run of consecutive cases
    for dtype in dtypes:
        for task in spec.tasks:
            for workload in with_batch_sizes(spec.workloads[preset], batch_sizes):
                if workload.tasks and task not in workload.tasks:
                    continue
                for stack in spec.stacks:
                    if (only_stacks and stack_name(stack) not in only_stacks) or (workload.stacks and stack not in workload.stacks):
                        continue
                    yield workload, Case(
                        spec.name, task, preset, dtype, workload.batch_size, workload.lengths, stack, workload.items,
                        workload.weights, stack_params(stack, lever_params), workload.beams,
                    )


def drop_reason(
    spec: FamilySpec, workload: Workload, case: Case, device: str, only_stacks: tuple[str, ...],
    does_not_fit: Callable[[Case], str] | None,
) -> str:
    """Why a declared cell is dropped at expansion ("" when it runs): a lever that cannot run
    here or on this workload, an opt-in stack not named by --stacks, or memory that would not fit."""
    reason = unavailable_reason(case.stack, spec, device, case.dtype) or case_unavailable_reason(case.stack, case)
    if reason:
        return reason
    if case.stack in spec.opt_in.get(case.preset, ()) + workload.opt_in and case.stack_name not in only_stacks:
        return OPT_IN_REASON
    return does_not_fit(case) if does_not_fit is not None else ""
