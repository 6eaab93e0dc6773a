"""Weight quantization of any nn.Module's linear layers, as data: one table of schemes.

Generic on purpose: a runner applies `quantize_in_place(model, scheme)` to whatever module it
runs (a decoder, a speech model's text decoder, ...), and `linear_census` says how many
linear layers were replaced and by what, for the lever's evidence.

In place: each linear's float weight is freed as its quantized one replaces it, so quantizing
never holds the float weights twice. A session whose float model other sessions share (a workload's
stacks kept warm together, where the fit estimate found room for both) quantizes a copy instead,
`quantized_copy`; the float weights are then held twice for a moment.
"""

from __future__ import annotations

import copy
import importlib.util
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import HarnessError, unknown_choice

if TYPE_CHECKING:
    import torch

TORCHAO = "torchao"


@dataclass(frozen=True)
class Scheme:
    summary: str
    package: str  # the package whose absence makes the scheme unavailable ("" = torch itself)
    apply: Callable[[torch.nn.Module], torch.nn.Module]  # quantizes in place or returns a new module
    missing_api: Callable[[], str] = lambda: ""  # why the installed package cannot do it ("" = it can)
    # Bytes per linear weight as stored (scales left out: a few percent); None: a per-layer choice.
    weight_bytes: float | None = None


@dataclass(frozen=True)
class _TorchaoConfig:
    """Quantizes a model's linear layers in place with one torchao config."""

    config_name: str  # for the evidence: the torchao config that was applied
    kwargs: Mapping[str, object] = field(default_factory=dict)

    def __call__(self, model: torch.nn.Module) -> torch.nn.Module:
        import torchao.quantization as tq

        tq.quantize_(model, getattr(tq, self.config_name)(**self.kwargs), filter_fn=_is_linear)
        return model


def _torchao(config_name: str, **kwargs: object) -> _TorchaoConfig:
    return _TorchaoConfig(config_name, kwargs)


def _torch_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    """PyTorch's eager dynamic int8 quantization of nn.Linear (CPU: fbgemm/onednn kernels)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # deprecated in favour of torchao, still the CPU's stock path
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def _torchao_autoquant_missing() -> str:
    import torchao

    if hasattr(torchao, "autoquant"):
        return ""
    return f"torchao {torchao.__version__} has no autoquant API (removed from the package)"


def _autoquant(model: torch.nn.Module) -> torch.nn.Module:
    import torchao

    return torchao.autoquant(model)


# Int4: the tinygemm layout (`tile_packed_to_4d`) runs on CUDA in bfloat16 without an extra
# package; torchao's default `plain` layout needs the mslk kernel package, and no int4 layout
# of torchao 0.18 runs on the CPU (seen here: "Int4PlainInt32Tensor does not support device cpu").
INT4_GROUP_SIZE = 128
SCHEMES = {
    "int8dq": Scheme(
        "int8 dynamic activation + int8 weight (torchao)", TORCHAO, _torchao("Int8DynamicActivationInt8WeightConfig"),
        weight_bytes=1,
    ),
    "int8wo": Scheme("int8 weight-only (torchao)", TORCHAO, _torchao("Int8WeightOnlyConfig"), weight_bytes=1),
    "int4wo": Scheme(
        f"int4 weight-only, group {INT4_GROUP_SIZE}, tinygemm layout (torchao)", TORCHAO,
        _torchao("Int4WeightOnlyConfig", group_size=INT4_GROUP_SIZE, int4_packing_format="tile_packed_to_4d"),
        weight_bytes=0.5,
    ),
    "autoquant": Scheme("torchao autoquant (per-layer choice by benchmark)", TORCHAO, _autoquant, _torchao_autoquant_missing),
    "dynint8": Scheme(
        "PyTorch dynamic int8 nn.Linear (torch.ao.quantization.quantize_dynamic)", "", _torch_dynamic, weight_bytes=1,
    ),
}


def scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise unknown_choice("quantization scheme", name, SCHEMES) from None


def unavailable(name: str) -> str:
    """Why this environment cannot apply the scheme ("" when it can): package or API missing."""
    found = scheme(name)
    if found.package and importlib.util.find_spec(found.package) is None:
        return f"{name} needs the {found.package} package, which is not installed"
    return found.missing_api() if found.package else ""


def _is_linear(module: torch.nn.Module, fqn: str = "") -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)


def linear_census(model: torch.nn.Module) -> Counter:
    """How many linear layers hold which kind of weight: 'float32' for plain ones, otherwise the
    quantized tensor subclass (torchao) or quantized module class (torch.ao)."""
    import torch

    found: Counter = Counter()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            weight = module.weight
            kind = type(weight).__name__
            found[str(weight.dtype).removeprefix("torch.") if kind in ("Parameter", "Tensor") else kind] += 1
        elif "quantized" in type(module).__module__ and type(module).__name__ == "Linear":
            found[f"{type(module).__module__.removeprefix('torch.ao.nn.')}.Linear"] += 1
    return found


FLOAT_KINDS = frozenset({"float32", "bfloat16", "float16"})


@dataclass(frozen=True)
class Quantized:
    model: torch.nn.Module
    scheme: str
    before: dict  # census of the float model
    after: dict  # census of the quantized copy

    def evidence(self) -> dict:
        replaced = {kind: count for kind, count in self.after.items() if kind not in FLOAT_KINDS}
        apply = scheme(self.scheme).apply
        return {
            "scheme": self.scheme,
            "method": apply.config_name if isinstance(apply, _TorchaoConfig) else apply.__name__.lstrip("_"),
            "linears": sum(self.before.values()),
            "replaced": sum(replaced.values()),
            "replaced_by": replaced,
            "kept_float": sum(count for kind, count in self.after.items() if kind in FLOAT_KINDS),
        }


@contextmanager
def inductor_config_kept() -> Iterator[None]:
    """Whatever the block changes in torch._inductor.config is set back after it. torchao's
    quantize_ applies its recommended inductor settings (coordinate-descent tuning, int_mm fusion)
    process-wide and never restores them, so every later compile case of the run, quantized or not,
    would compile under another configuration: results would depend on case order."""
    import torch._inductor.config as inductor_config

    saved = inductor_config.get_config_copy()
    try:
        yield
    finally:
        for key, value in inductor_config.get_config_copy().items():
            if saved.get(key, value) != value:
                setattr(inductor_config, key, saved[key])


def quantize_in_place(model: torch.nn.Module, name: str) -> Quantized:
    """`model` with its linear layers quantized by the named scheme, in place (the float weights
    are gone after it); the inductor configuration stays the run's (`inductor_config_kept`)."""
    found = scheme(name)
    before = linear_census(model)
    if not any(kind in FLOAT_KINDS for kind in before):
        raise HarnessError(f"{name}: the model holds no float linear layer to quantize ({dict(before)})")
    with inductor_config_kept():
        result = found.apply(model)
    return Quantized(result, name, dict(before), dict(linear_census(result)))


def quantized_copy(model: torch.nn.Module, name: str) -> Quantized:
    """A quantized deep copy of `model`, which stays as it was (`quantize_in_place` on the copy)."""
    return quantize_in_place(copy.deepcopy(model), name)
