"""Model builders, one module per family, in one explicit table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import HarnessError, unknown_choice

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class FamilyModels:
    presets: Mapping[str, Mapping]  # preset -> config keyword arguments
    config: Callable  # (preset) -> transformers config
    random: Callable  # (config) -> model with freshly initialised weights
    load: Callable  # (folder, torch dtype) -> model from a local checkpoint


def family_models(family: str) -> FamilyModels:
    """The family's model builders, named by its spec (imported on first use)."""
    from harness.families import family_spec
    from harness.lazy import resolve

    found = resolve(family_spec(family).models)
    assert isinstance(found, FamilyModels), f"{family}: its spec's models entry is not a FamilyModels"
    return found


def model_config(family: str, preset: str):
    models = family_models(family)
    if preset not in models.presets:
        raise unknown_choice(f"preset for {family}", preset, models.presets)
    return models.config(preset)


def build_model(family: str, preset: str, dtype: str, device: str, seed: int, checkpoint_dir: str = "", weights: str = ""):
    """Seeded random weights for (family, preset), or a real checkpoint from a local folder;
    `weights` names a synthetic variant of the random weights (harness/spec/weights.py)."""
    models = family_models(family)
    torch_dtype = DTYPES[dtype]
    if checkpoint_dir and weights:
        raise HarnessError(f"{weights} weights are synthetic: not applied to the checkpoint in {checkpoint_dir!r}")
    if checkpoint_dir:
        folder = Path(checkpoint_dir)
        if not (folder / "config.json").is_file():
            raise HarnessError(f"checkpoint folder {str(folder)!r} has no config.json")
        return models.load(folder, torch_dtype).to(device).eval()
    config = model_config(family, preset)
    torch.manual_seed(seed)
    with torch.device(device):
        model = models.random(config)
    if weights:
        from harness.spec.weights import weight_variant

        weight_variant(weights).apply(model)
    return model.to(torch_dtype).eval()


def count_parameters_on_meta(family: str, preset: str) -> int:
    """Parameter count of a preset without allocating its weights."""
    config = model_config(family, preset)
    with torch.device("meta"):
        model = family_models(family).random(config)
    return sum(p.numel() for p in model.parameters())


class ModelCache:
    """Keeps the most recent model only: presets of the paper's size fill a GPU."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._model = None

    def get(self, *key):
        if key != self._key:
            self._model = None  # drop the old model before building the next
            self._model = build_model(*key)
            self._key = key
        return self._model
