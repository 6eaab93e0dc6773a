"""The one registry of optimization levers. Exact names; an unknown name fails loudly.

A stack is a tuple of lever names applied in order, e.g. ("sdpa", "static", "compile").
Each lever is declared once (one module per lever kind; thin levers of one kind are rows of a
table there) and returns evidence that it took effect. A lever declares what it needs of a
family (`needs`: capabilities such as "kv_cache") and a family declares what it has
(`FamilySpec.capabilities`), so no lever keeps a list of family names.

Importing the registry imports no torch: lever modules import their heavy parts inside the
functions that need them, so analysis and publishing can read lever slots without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from harness.errors import unknown_choice

ALL_DEVICE_TYPES = frozenset({"cpu", "cuda"})
ALL_DTYPES = frozenset({"float32", "bfloat16", "float16"})


class LeverNotInEffect(AssertionError):
    """A lever applied but its evidence says it did not take effect."""


@dataclass(frozen=True)
class Tolerance:
    """A lossy lever's stated output check: `metric` (a key of harness.measure.equivalence.agreement's
    result) must be at least `minimum`, else the case fails exactly like a mismatch."""

    metric: str
    minimum: float
    why: str = ""


@dataclass(frozen=True)
class Lever:
    name: str
    slot: str  # at most one lever per slot in a stack (e.g. one attention implementation)
    summary: str
    configure: Callable  # (harness.levers.plan.Plan) -> Plan
    evidence: Callable  # (session) -> dict; raises LeverNotInEffect
    needs: frozenset[str] = frozenset()  # capabilities a family must have (FamilySpec.capabilities)
    device_types: frozenset[str] = ALL_DEVICE_TYPES
    requires: tuple[str, ...] = ()  # levers that must come earlier in the stack ("a|b": either one)
    brief: Callable = lambda evidence: " ".join(f"{k}={v}" for k, v in evidence.items())  # table cell
    tolerance: Tolerance | None = None  # lossy levers only: outputs are checked to this, not exactly
    dtypes: frozenset[str] = ALL_DTYPES  # model dtypes the lever runs in
    unavailable: Callable[[], str] = lambda: ""  # why this environment cannot run it (a package missing)
    params: Mapping[str, str] = field(default_factory=dict)  # RunOptions field it reads -> its token in case ids
    quick_tokens: int = 0  # at least this many tokens in a quick check (a lever that acts on the text so far)
    case_reason: Callable = lambda case: ""  # why this lever cannot apply to a case's workload ("" if it can)
    reset: Callable[[], None] | None = None  # clears process-wide state (compile caches) before a workload's sessions


class Registry:
    def __init__(self, levers: tuple[Lever, ...]) -> None:
        self._levers = {lever.name: lever for lever in levers}

    def get(self, name: str) -> Lever:
        try:
            return self._levers[name]
        except KeyError:
            raise unknown_choice("lever", name, self._levers) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._levers)

    def param_tokens(self) -> dict[str, str]:
        """Every lever parameter (a RunOptions field) and its short form in case ids."""
        return {name: token for lever in self._levers.values() for name, token in lever.params.items()}

    def reset_state(self, stacks: Iterable[tuple[str, ...]]) -> None:
        """Run the `reset` of every lever these stacks use, once each (before a workload's sessions)."""
        names = dict.fromkeys(name for stack in stacks for name in stack)
        for name in names:
            reset = self.get(name).reset
            if reset is not None:
                reset()

    @contextmanager
    def temporarily(self, lever: Lever) -> Iterator[Lever]:
        """Add a lever for the duration of a block (tests plant faulty levers this way)."""
        if lever.name in self._levers:
            raise ValueError(f"lever {lever.name!r} is already registered")
        self._levers[lever.name] = lever
        try:
            yield lever
        finally:
            del self._levers[lever.name]


def stack_name(stack: tuple[str, ...]) -> str:
    return "+".join(stack)


def stack_tolerance(stack: tuple[str, ...]) -> Tolerance | None:
    """The stated tolerance of a stack's lossy lever (one slot holds them); None: exact check."""
    found = [tolerance for name in stack if (tolerance := LEVERS.get(name).tolerance) is not None]
    return min(found, key=lambda tolerance: tolerance.minimum) if found else None


class HasCapabilities(Protocol):
    """What the levers read of a family (harness.spec.matrix.FamilySpec): read-only, as the
    frozen dataclass's fields are."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[str]: ...


def applies_to(lever: Lever, family: HasCapabilities) -> bool:
    return lever.needs <= family.capabilities


def unavailable_reason(stack: tuple[str, ...], family: HasCapabilities, device: str, dtype: str = "") -> str:
    """Why this stack cannot run for this family on this device (in this dtype); "" when it can."""
    device_type = device.split(":")[0]
    seen_slots: dict[str, str] = {}
    for position, name in enumerate(stack):
        lever = LEVERS.get(name)
        if not applies_to(lever, family):
            return f"{name} does not apply to {family.name}"
        if device_type not in lever.device_types:
            return f"{name} needs a {'/'.join(sorted(lever.device_types))} device (this run: {device_type})"
        if dtype and dtype not in lever.dtypes:
            return f"{name} runs in {'/'.join(sorted(lever.dtypes))} only (this case: {dtype})"
        why = lever.unavailable()
        if why:
            return why
        missing = [need for need in lever.requires if not set(need.split("|")) & set(stack[:position])]
        if missing:
            return f"{name} needs {', '.join(_applicable(need, family) for need in missing)} earlier in the stack"
        if lever.slot in seen_slots:
            return f"{name} and {seen_slots[lever.slot]} both set the {lever.slot}"
        seen_slots[lever.slot] = name
    return ""


def case_unavailable_reason(stack: tuple[str, ...], case) -> str:
    """Why a stack cannot run this case's workload (e.g. a beam-search lever on a greedy case)."""
    for name in stack:
        reason = LEVERS.get(name).case_reason(case)
        if reason:
            return f"{name} {reason}"
    return ""


def _applicable(need: str, family: HasCapabilities) -> str:
    """The alternatives of a requirement that apply to this family, e.g. "static" for llama."""
    names = [name for name in need.split("|") if applies_to(LEVERS.get(name), family)]
    return " or ".join(names or need.split("|"))


def _builtin_levers() -> tuple[Lever, ...]:
    from harness.levers import attention, cudagraphs, flex, layout, quantization, reorder, speculation, static
    from harness.levers import compile as compile_lever

    return (
        *attention.LEVERS, static.LEVER, compile_lever.LEVER, cudagraphs.LEVER,
        *layout.LEVERS, flex.LEVER, *quantization.LEVERS, *speculation.LEVERS, reorder.LEVER,
    )


LEVERS = Registry(_builtin_levers())
