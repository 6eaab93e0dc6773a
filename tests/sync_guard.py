"""A host-sync guard for the CPU: a TorchDispatchMode that records every op which, on a CUDA device,
makes the host wait for the device (docs/profiling.md#host-syncs-in-the-timed-loop).

On CUDA those ops stall the host until the queue drains: inside a captured step they are illegal
(capture fails), and once per token in a timed loop they put the launch latency back into every
token, the very cost the graph and compile levers exist to remove. On the CPU nothing stalls, so
the guard recognises the ops themselves:

  value     reads a device value on the host: `.item()`, `int()`, `float()`, `bool()` / `if` of a
            tensor (aten::_local_scalar_dense), and every op torch tags `data_dependent_output`
            (aten::equal, aten::is_nonzero, aten::allclose, ...);
  shape     an output shape that depends on the data: every op torch tags `dynamic_output_shape`
            (nonzero, masked_select, unique, repeat_interleave without output_size, ...) and
            indexing with a boolean or int8 mask (aten::index / index_put run nonzero inside);
  to_host   `.tolist()`, `.numpy()`, `.cpu()`: on CUDA always a device-to-host copy (Python-level:
            on a CPU tensor these dispatch no op, so the guard wraps the Tensor methods);
  upload    a tensor made from Python data (torch.tensor, torch.as_tensor: aten::lift_fresh), of one
            dimension or more and not empty: on CUDA a blocking host-to-device copy (a stream sync),
            and a host pointer baked into a captured graph;
  device    aten::_to_copy to another device, aten::copy_ between devices.

What the CPU cannot show: a 0-dim tensor made from a Python number (on the CPU `x[i] = 0.0` makes
one too, where CUDA runs a fill kernel and copies nothing, so 0-dim lifts are not flagged);
`.to(device)` / `.to("cpu")` spelled with `.to` (on the CPU the target is the tensor's own device,
so no op is dispatched and nothing is copied; `device` checks fire only where two devices meet,
e.g. a planted `.to("meta")`); pinned-memory and non_blocking semantics; and syncs inside the CUDA
runtime itself (cudaMalloc when the caching allocator grows, a synchronize of a clock or of a
library). On a GPU, `torch.cuda.set_sync_debug_mode("error")` is the
native check of the same region.

Each record names its op, the innermost frame outside torch (file:line and function), the clock
span it fell in (the name of the mark that ends it, as Marks.spans() reads them; "untimed" before
start or after the marks are read), whether that span repeats in the run (the per-token loop), and
whether it happened inside a guarded step (`SyncGuard.step`: the callable compile and CUDA graphs
wrap).
"""

from __future__ import annotations

import functools
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

UNTIMED = "untimed"
# Tensor methods that copy to the host without dispatching an op on a CPU tensor.
HOST_METHODS = ("tolist", "numpy", "cpu")
MASK_DTYPES = (torch.bool, torch.int8, torch.uint8)  # index masks: aten::index runs nonzero over them
UPLOAD_OPS = ("lift_fresh", "lift_fresh_copy")
_SKIPPED_FRAMES = (str(Path(torch.__file__).parent), __file__, functools.__file__)


@dataclass(frozen=True)
class Sync:
    op: str  # "aten._local_scalar_dense.default", "Tensor.tolist", ...
    kind: str  # value | shape | to_host | upload | device (module doc)
    site: str  # "harness/families/speculative.py:111" (innermost frame outside torch)
    function: str  # the function of that frame
    span: str = UNTIMED  # the clock span it fell in (the name of the mark that closes it)
    in_loop: bool = False  # that span repeats in its run: a per-token (per-round) part of the loop
    in_step: bool = False  # inside a guarded step (what compile / CUDA graphs wrap)

    def describe(self) -> str:
        where = "inside the step" if self.in_step else ("in the loop" if self.in_loop else "once")
        return f"{self.op} ({self.kind}) at {self.site} in {self.function}, span {self.span!r}, {where}"


def _index_masks(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(index, torch.Tensor) and index.dtype in MASK_DTYPES for index in indices or ())


def _device_of(value) -> torch.device | None:
    return value.device if isinstance(value, torch.Tensor) else None


def _crosses_devices(func, args, kwargs) -> bool:
    name = func.__name__.split(".")[0]
    if name == "_to_copy" and kwargs.get("device") is not None:
        return torch.device(kwargs["device"]) != _device_of(args[0])
    if name == "copy_" and len(args) > 1:
        return _device_of(args[0]) != _device_of(args[1])
    return False


def sync_kind(func, args, kwargs) -> str | None:
    """The kind of host sync this dispatched op makes on CUDA (module doc), or None."""
    name = func.__name__.split(".")[0]
    tags = getattr(func, "tags", ())
    if name == "_local_scalar_dense" or torch.Tag.data_dependent_output in tags:
        return "value"
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
        return "shape" if _index_masks(args) else None
    if torch.Tag.dynamic_output_shape in tags:
        return "shape"
    if name in UPLOAD_OPS:
        lifted = args[0] if args else None
        return "upload" if isinstance(lifted, torch.Tensor) and lifted.dim() > 0 and lifted.numel() > 0 else None
    return "device" if _crosses_devices(func, args, kwargs) else None


def _site() -> tuple[str, str]:
    """(file:line, function) of the innermost frame outside torch and this module."""
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(_SKIPPED_FRAMES):
            return f"{_short(frame.filename)}:{frame.lineno}", frame.name
    return "?", "?"


def _short(path: str) -> str:
    for anchor in ("/harness/", "/tests/", "/site-packages/"):
        if anchor in path:
            return path[path.index(anchor) + 1 :].removeprefix("site-packages/")
    return path


class SyncGuard(TorchDispatchMode):
    """Records host syncs (module doc) while entered; `step` marks a callable's calls as inside the
    step, `clock` attributes each record to the span of the clock it wraps."""

    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[Sync] = []
        self._step_depth = 0
        self._timing = False
        self._pending: list[int] = []  # records of the open span (named when its mark is taken)
        self._run: list[int] = []  # records of the clock's current run
        self._run_marks: list[str] = []
        self._saved: dict[str, Callable] = {}
        self.active = False  # entered: recording (steps and clocks report only then)
        self.step_calls = 0  # calls of guarded steps while active (a check that saw none checked nothing)
        self.loop_spans: set[str] = set()  # span names that repeated in some run (the loops seen)

    # -- entering: the dispatch mode, and the host-copy methods wrapped --------------------------
    def __enter__(self):
        self.active = True
        for name in HOST_METHODS:
            self._saved[name] = getattr(torch.Tensor, name)
            setattr(torch.Tensor, name, self._recording(name, self._saved[name]))
        return super().__enter__()

    def __exit__(self, *exc):
        for name, method in self._saved.items():
            setattr(torch.Tensor, name, method)
        self._saved.clear()
        self.active = False
        return super().__exit__(*exc)

    def _recording(self, name: str, method: Callable) -> Callable:
        @functools.wraps(method)
        def recorded(tensor, *args, **kwargs):
            self.record(f"Tensor.{name}", "to_host")
            return method(tensor, *args, **kwargs)

        return recorded

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = sync_kind(func, args, kwargs)
        if kind is not None:
            self.record(str(func), kind)
        return func(*args, **kwargs)

    # -- recording --------------------------------------------------------------------------------
    def record(self, op: str, kind: str) -> None:
        site, function = _site()
        self.syncs.append(Sync(op, kind, site, function, in_step=self._step_depth > 0))
        if self._timing:
            self._pending.append(len(self.syncs) - 1)
            self._run.append(len(self.syncs) - 1)

    def step(self, fn: Callable) -> Callable:
        """`fn`, its calls counted as inside the step (GraphedStep's warm-up and capture included)."""

        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            self._step_depth += 1
            self.step_calls += self.active
            try:
                return fn(*args, **kwargs)
            finally:
                self._step_depth -= 1

        return guarded

    def clock(self, inner) -> GuardedClock:
        return GuardedClock(inner, self)

    # -- the clock's calls --------------------------------------------------------------------------
    def started(self) -> None:
        self._timing, self._pending, self._run, self._run_marks = self.active, [], [], []

    def marked(self, name: str) -> None:
        if not self._timing:
            return
        for index in self._pending:
            self.syncs[index] = replace(self.syncs[index], span=name)
        self._pending = []
        self._run_marks.append(name)

    def stopped(self) -> None:
        """The marks were read: the run's records learn whether their span repeats (the loop)."""
        if not self._timing:
            return
        counts = Counter(self._run_marks)
        self.loop_spans |= {name for name, count in counts.items() if count > 1}
        for index in self._run:
            self.syncs[index] = replace(self.syncs[index], in_loop=counts[self.syncs[index].span] > 1)
        self.marked(UNTIMED)  # records after the last mark and before the read: outside every span
        self._timing = False

    # -- reading ------------------------------------------------------------------------------------
    def in_steps(self) -> list[Sync]:
        return [sync for sync in self.syncs if sync.in_step]

    def in_loop(self) -> list[Sync]:
        return [sync for sync in self.syncs if sync.in_loop or sync.in_step]


class GuardedClock:
    """A runner's clock, unchanged, that also tells the guard where each span starts and ends."""

    def __init__(self, inner, guard: SyncGuard) -> None:
        self._inner = inner
        self._guard = guard

    def start(self) -> None:
        self._inner.start()
        self._guard.started()

    def mark(self, name: str) -> None:
        self._inner.mark(name)
        self._guard.marked(name)

    def elapsed_s(self) -> list[float]:
        self._guard.stopped()
        return self._inner.elapsed_s()

    def marks(self):
        self._guard.stopped()
        return self._inner.marks()

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def describe(syncs: list[Sync]) -> str:
    return "\n".join(f"  {sync.describe()}" for sync in syncs) or "  none"
