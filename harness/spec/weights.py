"""Synthetic weight variants: random weights changed on purpose, and labelled so everywhere.

Random weights make an early-exit draft agree with the full model almost never, so speculative
decoding would be exercised on the CPU only in its rejection path. The `draft-friendly` variant
scales down the residual contributions (attention o_proj and MLP down_proj) of the later layers,
so the first layers' prediction mostly stands. Its acceptance rates say nothing about a real
checkpoint: a case using it carries the variant's token in its id, its fingerprint and records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.errors import unknown_choice


@dataclass(frozen=True)
class DraftFriendly:
    scale: float = 0.05  # factor on o_proj and down_proj of every layer from `first_scaled_layer` on
    first_scaled_frac: float = 0.5  # first scaled layer as a fraction of the depth (4 layers: layer 2)

    @property
    def token(self) -> str:
        return f"draftfriendly{self.scale:g}"

    def label(self) -> str:
        return f"synthetic draft-friendly: later {1 - self.first_scaled_frac:.0%} of layers' residual writes x{self.scale:g}"

    def first_scaled_layer(self, num_layers: int) -> int:
        return round(num_layers * self.first_scaled_frac)

    def apply(self, model) -> None:
        import torch

        with torch.no_grad():
            self._scale(model)

    def _scale(self, model) -> None:
        layers = model.model.layers
        for layer in layers[self.first_scaled_layer(len(layers)) :]:
            layer.self_attn.o_proj.weight.mul_(self.scale)
            layer.mlp.down_proj.weight.mul_(self.scale)

    def params(self) -> dict:
        return {"variant": "draft-friendly", **asdict(self)}


WEIGHT_VARIANTS = {"draft-friendly": DraftFriendly()}


def weight_variant(name: str) -> DraftFriendly:
    try:
        return WEIGHT_VARIANTS[name]
    except KeyError:
        raise unknown_choice("weights variant", name, WEIGHT_VARIANTS) from None
