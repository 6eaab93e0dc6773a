"""Ranges the profiled iteration carries, and only it: phase ranges from the clock marks, and
category ranges around work whose operators do not name it (a norm module's pow/mean/mul; the
KV-cache update's cat or index_copy_, which RoPE's cat would otherwise be confused with).

Category ranges are installed for the eager code only: in a session whose decode step is
wrapped (compile, CUDA graphs) they are removed when prefill ends, so the wrapped step runs
exactly the code that was timed (a hook or patched method would make dynamo recompile).
"""

# No `from __future__ import annotations` here: it binds the module-level name `annotations`, which
# the context manager at the end of this module takes (its annotations all evaluate on Python 3.10).
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch

from harness.measure.profile.categories import category_range
from harness.measure.profile.timeline import MARK_RANGE_PREFIX, PHASE_RANGE_PREFIX

# A range without operator dispatch from Python (~5 us against ~20 us); the trace shows it as an
# operator, which harness.measure.profile.trace reads as a range by its prefix.
FAST_RANGE = getattr(torch._C._profiler, "_RecordFunctionFast", torch.profiler.record_function)
NORM_MODULE = re.compile(r"(RMS|Layer|Group|Batch)Norm", re.IGNORECASE)


class _Range:
    def __init__(self) -> None:
        self._open: list = []

    def enter(self, name: str) -> None:
        handle = torch.profiler.record_function(name)
        handle.__enter__()
        self._open.append(handle)

    def exit(self) -> None:
        if self._open:
            self._open.pop().__exit__(None, None, None)


class PhaseClock:
    """Wraps a clock: a `prefill` range from start to the first mark, then one `decode` range
    per token; `on_prefill_end` runs at the first mark. Marks keep their names on the inner clock."""

    def __init__(self, inner, max_marks: int, on_prefill_end=lambda: None) -> None:
        self.inner = inner
        self.max_marks = max_marks
        self.on_prefill_end = on_prefill_end
        self._ranges = _Range()
        self._marks = 0

    def start(self) -> None:
        self._marks = 0
        self.inner.start()  # first: a CUDA clock synchronizes here, and that wait is no phase's
        self._ranges.enter(PHASE_RANGE_PREFIX + "prefill")

    def mark(self, *name: str) -> None:
        self.inner.mark(*name)  # the mark's name, where the caller gives one
        self._ranges.exit()
        self._marks += 1
        if self._marks == 1:
            self.on_prefill_end()
        if self._marks < self.max_marks:
            self._ranges.enter(PHASE_RANGE_PREFIX + "decode")

    def elapsed_s(self) -> list[float]:
        self._ranges.exit()
        return self.inner.elapsed_s()

    def marks(self):
        """The inner clock's named marks (harness.measure.clock.Marks)."""
        self._ranges.exit()
        return self.inner.marks()


def stage_phase(stage: str) -> str:
    """The profile's phase of a stage: its name without the seconds suffix (prefill_s -> prefill)."""
    return stage.removesuffix("_s")


class StageClock:
    """The profiled iteration's clock for a runner that names its stages by marks: the clock's
    start and every mark taken inside a `harness::mark::<phase>` range, named by the phase of the
    stage the mark ends (a mark of no stage: unnamed), which harness.measure.profile.phases
    .marker_ranges turns into each stage's intervals, from range end to range end. `on_mark`:
    called once, after the first mark of its name."""

    def __init__(self, inner, stage_of_mark: Mapping[str, str], on_mark: Mapping[str, Callable[[], None]]) -> None:
        self.inner = inner
        self.marker_of_mark = {mark: MARK_RANGE_PREFIX + stage_phase(stage) for mark, stage in stage_of_mark.items()}
        self.on_mark = dict(on_mark)

    def start(self) -> None:
        # A first marker before the clock starts: the profiler's first range of an iteration costs
        # more than the later ones (measured: 0.1 ms, 8 ms in a process's first), and the start
        # marker paying it would cut that much off the first stage's interval.
        with FAST_RANGE(MARK_RANGE_PREFIX):
            pass
        with FAST_RANGE(MARK_RANGE_PREFIX):
            self.inner.start()  # a CUDA clock synchronizes here, and that wait is no stage's

    def mark(self, name: str) -> None:
        # The stamp inside the range, the boundary its end: the first Python after a forward runs
        # ~10 us slower than after a token choice (cold caches, measured), and that time then lies
        # before both the clock's stamp and the profile's boundary, in the same stage. The fast
        # range (no operator dispatch from Python) keeps the two a few us apart.
        with FAST_RANGE(self.marker_of_mark.get(name, MARK_RANGE_PREFIX)):
            self.inner.mark(name)
        callback = self.on_mark.pop(name, None)
        if callback is not None:
            callback()

    def elapsed_s(self) -> list[float]:
        return self.inner.elapsed_s()

    def marks(self):
        return self.inner.marks()


class CategoryRanges:
    """Forward hooks on norm modules and a wrapped cache `update`, each in a category range."""

    def __init__(self, session) -> None:
        self.session = session
        self._hooks: list = []
        self._patched = None
        self._ranges = _Range()
        self.keep_after_prefill = not session.wrappers

    def _wrap_cache(self) -> None:
        cache = self.session.cache
        if cache is None:  # a session without a KV cache (HSTU): nothing to annotate
            return
        original = cache.update
        ranges = self._ranges

        def update(*args, **kwargs):
            ranges.enter(category_range("kv_cache"))
            try:
                return original(*args, **kwargs)
            finally:
                ranges.exit()

        cache.update = update  # instance attribute: the class and other caches are untouched
        self._patched = cache

    def install(self) -> None:
        def enter(module, args):
            self._ranges.enter(category_range("norm"))

        def leave(module, args, output):
            self._ranges.exit()

        for module in self.session.model.modules():
            if NORM_MODULE.search(type(module).__name__):
                self._hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
        original_reset = self.session.reset

        def reset() -> None:
            original_reset()
            self._wrap_cache()

        self.session.reset = reset

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self._patched is not None and "update" in vars(self._patched):
            del self._patched.update
        self._patched = None
        vars(self.session).pop("reset", None)

    def prefill_done(self) -> None:
        if not self.keep_after_prefill:
            self.remove()


@contextmanager
def annotations(session) -> Iterator[CategoryRanges]:
    ranges = CategoryRanges(session)
    ranges.install()
    try:
        yield ranges
    finally:
        ranges.remove()


@contextmanager
def stage_clock(clock, session, stage_of_mark: Mapping[str, str], wrapped_after: str, annotate: bool) -> Iterator:
    """The clock a staged runner's iteration marks: `clock` itself, or in the profiled iteration
    (`annotate`) a StageClock with category ranges that are removed after the mark `wrapped_after`
    where the session's step is wrapped (compile, CUDA graphs), before the wrapped step first runs."""
    if not annotate:
        yield clock
        return
    with annotations(session) as ranges:
        yield StageClock(clock, stage_of_mark, {wrapped_after: ranges.prefill_done})
