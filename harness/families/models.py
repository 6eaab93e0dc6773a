"""Model builders, one module per family, in one explicit table."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import HarnessError, unknown_choice
from harness.families.dtype_build import built_in

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
        check_architecture(family, preset, folder)
        return models.load(folder, torch_dtype).to(device).eval()
    config = model_config(family, preset)
    torch.manual_seed(seed)
    # Parameters are made in the target dtype as they are registered, filled as a float32 build
    # would fill them and rounded once: a float32 build's weights, cast, with no float32 copy of
    # the model (harness/families/dtype_build.py). `.to` then casts the float buffers, as it did.
    # A synthetic variant rescales float32 weights after the build, which rounded weights cannot
    # reproduce (a quarter of the scaled bfloat16 weights moved one unit): its presets (tiny and
    # small) are built in float32 and cast after it, as before.
    with torch.device(device), built_in(torch.float32 if weights else torch_dtype):
        model = models.random(config)
    if weights:
        from harness.spec.weights import weight_variant

        weight_variant(weights).apply(model)
    return model.to(torch_dtype).eval()


CONFIG_FILE = "config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")


def checkpoint_config(folder: Path) -> dict:
    """The checkpoint's config.json as a dict; HarnessError names the folder and what is wrong."""
    if not folder.is_dir():
        raise HarnessError(f"checkpoint folder {str(folder)!r} does not exist or is not a folder")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise HarnessError(f"checkpoint folder {str(folder)!r} has no config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path}: not a readable JSON config ({exc})") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: not a config object (found {type(data).__name__})")
    return data


def check_architecture(family: str, preset: str, folder: Path) -> None:
    """A checkpoint of another architecture is refused before loading, naming both model types."""
    expected = getattr(model_config(family, preset), "model_type", None) or family
    found = checkpoint_config(folder).get("model_type")
    if found != expected:
        raise HarnessError(
            f"checkpoint folder {str(folder)!r} holds the wrong architecture for {family}: "
            f"config.json model_type {found!r}, expected {expected!r}"
        )


def checkpoint_identity(checkpoint_dir: str) -> dict:
    """What a case's fingerprint adds for --checkpoint-dir: a hash of config.json and of the weight
    files' names and sizes ({} without a checkpoint, so random-weight fingerprints stay as they were).
    Another checkpoint (a wider model, retrained weights of another size) gets another fingerprint."""
    if not checkpoint_dir:
        return {}
    folder = Path(checkpoint_dir)
    checkpoint_config(folder)  # the folder and its config.json are there and readable
    weights = sorted(
        (str(path.relative_to(folder)), path.stat().st_size)
        for path in folder.rglob("*")
        if path.is_file() and path.name.endswith(WEIGHT_SUFFIXES)
    )
    digest = hashlib.sha256((folder / CONFIG_FILE).read_bytes())
    digest.update(json.dumps(weights).encode())
    return {"checkpoint": digest.hexdigest()[:16]}


def count_parameters_on_meta(family: str, preset: str) -> int:
    """Parameter count of a preset without allocating its weights."""
    return parameter_sizes_on_meta(family, preset)[0]


def parameter_sizes_on_meta(family: str, preset: str) -> tuple[int, int]:
    """(all parameters, the largest parameter's) element counts of a preset, nothing allocated."""
    config = model_config(family, preset)
    with torch.device("meta"):
        model = family_models(family).random(config)
    sizes = [p.numel() for p in model.parameters()]
    return sum(sizes), max(sizes, default=0)


class ModelCache:
    """Keeps the most recent model only: presets of the paper's size fill a GPU."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._model = None

    def get(self, *key):
        """The model of `key` (build_model's arguments), built unless it is the one kept."""
        if key != self._key:
            self.drop()  # the old model goes before the next is built
            self._model = build_model(*key)
            self._key = key
        return self._model

    def take(self, *key):
        """The model of `key`, given away: the cache keeps no reference, so the caller may change
        it in place (a quantized stack quantizes it) and the next `get` builds it afresh."""
        model = self.get(*key)
        self._key, self._model = None, None
        return model

    def drop(self) -> None:
        """Forget the kept model, and collect garbage: sessions of earlier cases may hold it (or
        a model taken before) in reference cycles, which would keep its weights allocated."""
        self._key, self._model = None, None
        gc.collect()
