"""A case's memory footprint (`peak_mem_bytes`, docs/records.md): the same figure on every device.

  model_bytes    the session's model: its parameters and buffers, counted from the tensors (a
                 quantized stack's model holds its quantized weights, so it counts those);
  session_bytes  tensors the session keeps from one run to the next (a static KV cache, an item
                 table, CUDA-graph inputs), the model's left out, counted at the window's start;
  growth_bytes   the most memory the peak iteration held above what was held when it started:
                 the allocator's growth on CUDA, the resident size's on the CPU (harness.measure.memory).

The first two are counted, not read from an allocator, so whatever else the process holds (the
float model a quantized stack's copy came from, the other warm sessions of interleaved rounds, the
CUDA context) is in no part on either device. Not counted: a CUDA graph's private memory pool (one
step's intermediates, kept between replays), and compiled code.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from harness.measure.memory import make_peak

StorageKey = tuple[str, int]  # (device, address of the storage)

# Objects whose attributes the session's tensors are looked for in: the harness's own (sessions,
# step wrappers, bookkeeping) and transformers' caches; never modules (the model is counted
# apart), functions or anything else.
WALKED_MODULES = ("harness.", "transformers.cache_utils")
LEAVES = (torch.nn.Module, type, types.ModuleType, types.FunctionType, types.MethodType, str, bytes, int, float)


@dataclass(frozen=True)
class Footprint:
    model_bytes: int
    session_bytes: int
    growth_bytes: int
    method: str  # how the growth was read (the peak reader's method), after what was counted

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.session_bytes + self.growth_bytes

    def parts(self) -> dict[str, int]:
        return {"model_bytes": self.model_bytes, "session_bytes": self.session_bytes, "growth_bytes": self.growth_bytes}


def storages(tensor: torch.Tensor) -> Iterator[tuple[StorageKey, int]]:
    """(key, bytes) of the storages a tensor holds: its own, or the inner tensors of a wrapper
    subclass (torchao's quantized weights hold their int data and scales in inner tensors)."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is not None and type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        names, _ = flatten()
        for name in names:
            yield from storages(getattr(tensor, name))
        return
    if tensor.device.type == "meta":
        return
    storage = tensor.untyped_storage()
    yield (str(tensor.device), storage.data_ptr()), storage.nbytes()


def keyed_bytes(tensors: Iterable[torch.Tensor]) -> dict[StorageKey, int]:
    """Each distinct storage once: views and tied weights share theirs."""
    return {key: size for tensor in tensors for key, size in storages(tensor)}


def _packed_weights(model: torch.nn.Module) -> Iterator[torch.Tensor]:
    """torch.ao's dynamically quantized linears keep weight and bias in packed parameters, which are
    neither parameters nor buffers; their unpacked tensors stand for them (int8: 1 byte a weight)."""
    for module in model.modules():
        packed = getattr(module, "_packed_params", None)
        unpack = getattr(packed, "_weight_bias", None) if isinstance(packed, torch.nn.Module) else None
        if callable(unpack):
            yield from (t for t in unpack() if isinstance(t, torch.Tensor))


def model_storages(model: torch.nn.Module) -> dict[StorageKey, int]:
    return keyed_bytes([*model.parameters(), *model.buffers(), *_packed_weights(model)])


def session_tensors(session) -> Iterator[torch.Tensor]:
    """Tensors reachable from the session's attributes through containers, harness objects and
    transformers caches (WALKED_MODULES)."""
    pending: list = list(vars(session).values())
    seen: set[int] = set()
    while pending:
        value = pending.pop()
        if id(value) in seen or isinstance(value, LEAVES):
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict):
            pending += value.values()
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending += value
        elif type(value).__module__.startswith(WALKED_MODULES) and hasattr(value, "__dict__"):
            pending += vars(value).values()


def measure_footprint(session, run_once: Callable[[], object], device: str) -> Footprint:
    """The footprint of one untimed iteration (`run_once`) of the session. Its per-run state is
    reset first, so that a dynamic KV cache left by the previous run is freed before the window
    and this run's grows inside it (reusing the freed one would raise neither allocator nor RSS)."""
    session.activate()
    session.reset()
    model = model_storages(session.model)
    own = {key: size for key, size in keyed_bytes(session_tensors(session)).items() if key not in model}
    peak = make_peak(device)
    peak.start()
    run_once()
    growth = peak.peak_bytes()
    return Footprint(sum(model.values()), sum(own.values()), growth, f"tensors+{peak.method}")
