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
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from harness.measure.profile.categories import category_range
from harness.measure.profile.timeline import PHASE_RANGE_PREFIX

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
