"""Building a model with random weights directly in a low-precision dtype, with the very weights
of a float32 build cast afterwards, and never a float32 copy of the model.

The old way, build in float32 then `.to(bfloat16)`, held 4 bytes per weight on the device (about
127 GiB for a 34B preset) before the cast. A meta-device build materialized afterwards cannot give
the same weights: the modules' own constructors draw their default initialization (nn.Linear's
kaiming_uniform_, nn.Embedding's normal_) from the generator before transformers' post-init draws
its own, so a re-initialization from meta would skip those draws and shift every later weight.

So the model is constructed on the device as before, with two changes while it is built:
  * every float32 parameter is replaced, as it is registered on its module, by one in the target
    dtype (torch's global parameter-registration hook): its float32 tensor is dropped at once;
  * every write to such a parameter (the initializers' in-place ops, transformers' and torch's
    alike) runs on a float32 copy of that one parameter, which is rounded into the parameter when
    another tensor is touched. A run of writes to one tensor (trunc_normal_'s uniform_, erfinv_,
    mul_, add_, clamp_) therefore rounds once, as the float32 build's final cast did, and draws
    from the generator exactly what the float32 build drew (same shapes, dtype and device).
At most one parameter's float32 copy exists at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def _storage_key(tensor: torch.Tensor) -> tuple[str, int]:
    return str(tensor.device), tensor.untyped_storage().data_ptr()


class _Shadow:
    """A float32 copy of one parameter's whole storage, where its writes go until it is rounded back."""

    def __init__(self, tensor: torch.Tensor, float32: torch.Tensor | None = None) -> None:
        numel = tensor.untyped_storage().nbytes() // tensor.element_size()
        self.full = tensor.new_empty(0).set_(tensor.untyped_storage(), 0, (numel,), (1,))
        # `float32`: the values the parameter was registered with, laid out as its storage
        self.float32 = self.full.to(torch.float32) if float32 is None else float32

    def view_of(self, tensor: torch.Tensor) -> torch.Tensor:
        """The float32 copy of `tensor`, a view of the shadowed storage."""
        return self.float32.as_strided(tensor.size(), tensor.stride(), tensor.storage_offset())

    def round_back(self) -> None:
        self.full.copy_(self.float32)


def _written(func, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors `func` writes to (its schema's mutable arguments)."""
    found = []
    for position, argument in enumerate(func._schema.arguments):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        value = args[position] if position < len(args) else kwargs.get(argument.name)
        if isinstance(value, torch.Tensor):
            found.append(value)
    return found


def _tensors(values) -> Iterator[torch.Tensor]:
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _tensors(value)


class Float32Writes(TorchDispatchMode):
    """Routes every write to a tracked low-precision parameter through a float32 copy of it."""

    def __init__(self) -> None:
        super().__init__()
        self.tracked: set[tuple[str, int]] = set()
        self.key: tuple[str, int] | None = None  # the storage the shadow copies
        self.shadow: _Shadow | None = None
        self.own_ops = False  # the mode's own copies, made from outside __torch_dispatch__, pass through

    def track(self, param: torch.Tensor, float32: torch.Tensor) -> None:
        """Follow the writes to `param` (a low-precision parameter just made), whose values are
        `float32`'s until they are rounded in."""
        self.flush()
        self.own_ops = True
        try:
            key = _storage_key(param)
            self.tracked.add(key)
            whole = float32.is_contiguous() and float32.numel() * param.element_size() == param.untyped_storage().nbytes()
            self.key, self.shadow = key, _Shadow(param, float32.reshape(-1) if whole else None)
            if not whole:
                self.shadow.view_of(param).copy_(float32)
        finally:
            self.own_ops = False

    def flush(self) -> None:
        """Round the pending float32 values into their parameter."""
        if self.shadow is not None:
            self.own_ops, own = True, self.own_ops
            try:
                self.shadow.round_back()
            finally:
                self.own_ops = own
        self.key, self.shadow = None, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.own_ops:
            return func(*args, **kwargs)
        touched = {_storage_key(t) for t in _tensors((*args, *kwargs.values())) if t.device.type != "meta"}
        if not touched & self.tracked or func._schema.is_mutable is False and _is_view(func):
            return func(*args, **kwargs)
        written = {_storage_key(t) for t in _written(func, args, kwargs)} & self.tracked
        if len(written) != 1:  # a read of a parameter (or an op writing several): it sees rounded values
            self.flush()
            return func(*args, **kwargs)
        (key,) = written
        if key != self.key:
            self.flush()
            first = next(t for t in _tensors((*args, *kwargs.values())) if _storage_key(t) == key)
            self.key, self.shadow = key, _Shadow(first)
        return self._on_shadow(func, args, kwargs)

    def _on_shadow(self, func, args: tuple, kwargs: dict):
        """Run `func` with every view of the shadowed parameter replaced by its float32 copy."""
        originals: dict[int, torch.Tensor] = {}
        out = func(*(self._swap(a, originals) for a in args), **{k: self._swap(v, originals) for k, v in kwargs.items()})
        if isinstance(out, torch.Tensor) and id(out) in originals:
            return originals[id(out)]  # an in-place op returns the tensor it wrote: the parameter's own
        return out

    def _swap(self, value, originals: dict[int, torch.Tensor]):
        # A method, not a closure over itself: a self-referencing closure is a reference cycle that
        # would keep each shadow (a parameter's float32 copy) alive until the garbage collector runs.
        if isinstance(value, (list, tuple)):
            return type(value)(self._swap(item, originals) for item in value)
        if not isinstance(value, torch.Tensor) or value.device.type == "meta" or _storage_key(value) != self.key:
            return value
        assert self.shadow is not None
        view = self.shadow.view_of(value)
        originals[id(view)] = value
        return view


def _is_view(func) -> bool:
    return any(argument.alias_info is not None for argument in func._schema.returns)


@contextmanager
def built_in(dtype: torch.dtype) -> Iterator[None]:
    """Inside, modules' float32 parameters are made in `dtype` as they are registered, and filled
    as a float32 build would fill them, rounded once (see the module's docstring). float32: as is."""
    if dtype == torch.float32:
        yield
        return
    mode = Float32Writes()

    def in_dtype(module, name: str, param):
        if param is None or param.dtype != torch.float32:
            return None
        made = torch.nn.Parameter(torch.empty_like(param, dtype=dtype), requires_grad=param.requires_grad)
        mode.track(made, param.detach())
        return made

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(in_dtype)
    try:
        with mode:
            yield
            mode.flush()
    finally:
        handle.remove()
