"""Chameleon's light declarations: preset shapes, image tokens per image, the task shapes and the
reference guidance. Imported by the family's spec, the memory fit and the model (no torch here).

`paper` is Chameleon 34B's shape, `paper-7b` Chameleon 7B's (docs/facts.md); both use the
released VQ tokenizer's shape. `tiny` and `small` are this harness's own sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.spec.matrix import Case, TaskShape

# The released tokenizer's VQ shape (= transformers' ChameleonVQVAEConfig defaults, written out
# so that the preset and its fingerprint say what they are).
RELEASED_VQ: dict[str, Any] = dict(
    resolution=512, in_channels=3, base_channels=128, channel_multiplier=[1, 1, 2, 2, 4], num_res_blocks=2,
    embed_dim=256, latent_channels=256, num_embeddings=8192, double_latent=False, attn_resolutions=None,
)
# One halving of 32x32 pixels: a 16x16 token grid, 256 tokens an image (the released tokenizer's
# 1024 at a quarter of the length). The tiny preset is the CPU's check of every path; with 1024
# tokens its five `ti` stacks alone took about a third of the README's main job (docs/families/chameleon.md).
TINY_VQ: dict[str, Any] = dict(
    resolution=32, in_channels=3, base_channels=32, channel_multiplier=[1, 2], num_res_blocks=1,
    embed_dim=32, latent_channels=32, num_embeddings=256, double_latent=False, attn_resolutions=None,
)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, vq_config=TINY_VQ,
    ),
    "small": dict(
        vocab_size=65536, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=4096, vq_config=RELEASED_VQ,
    ),
    "paper-7b": dict(  # Chameleon 7B (docs/facts.md)
        vocab_size=65536, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, vq_config=RELEASED_VQ,
    ),
    "paper": dict(  # Chameleon 34B (docs/facts.md)
        vocab_size=65536, hidden_size=8192, intermediate_size=22016, num_hidden_layers=48,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=4096, vq_config=RELEASED_VQ,
        # The Chameleon paper (arXiv 2405.09818, section 2.3) trains 34B with Swin-style norm
        # reordering; the same parameters, only their order of use differs.
        swin_norm=True,
    ),
}

def image_tokens_per_image(resolution: int, channel_multiplier) -> int:
    """Tokens one image becomes: the latent grid after len(channel_multiplier) - 1 halvings."""
    side = resolution // 2 ** (len(channel_multiplier) - 1)
    return side * side


def preset_image_tokens(preset: str) -> int:
    vq = PRESETS[preset]["vq_config"]
    return image_tokens_per_image(vq["resolution"], vq["channel_multiplier"])


TASKS = {
    "it": TaskShape(inputs=frozenset({"image", "text"}), outputs=frozenset({"text"})),
    "itt": TaskShape(inputs=frozenset({"image", "text"}), outputs=frozenset({"text"})),
    "ti": TaskShape(inputs=frozenset({"text"}), outputs=frozenset({"image"})),
    "tt": TaskShape(inputs=frozenset({"text"}), outputs=frozenset({"text"})),
}


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance scales of the reference image decoder (docs/facts.md)."""

    text_scale: float = 3.0
    image_scale: float = 1.2
    streams: int = 3  # full-conditioned, image-conditioned, unconditioned


REFERENCE_GUIDANCE = Guidance()


def fit_rows(case: Case) -> tuple[int, int]:
    """For the memory estimate (harness/spec/fit.py): the sequences a case's decoder runs
    (guidance streams multiply an image decode's rows) and the tokens an input image adds to the
    prompt (its tokens and its two delimiters)."""
    task = TASKS[case.task]
    rows = case.batch_size * (REFERENCE_GUIDANCE.streams if task.image_out else 1)
    extra = preset_image_tokens(case.preset) + 2 if task.image_in else int(task.image_out)
    return rows, extra
