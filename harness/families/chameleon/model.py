"""Chameleon family (mixed-modal: it, itt, ti, tt): transformers' ChameleonForConditionalGeneration.

One decoder over text tokens and image tokens; images become tokens through a VQ tokenizer
(the model's `vqmodel`). `paper` is Chameleon 34B's shape, `paper-7b` Chameleon 7B's (docs/facts.md);
both use the released VQ tokenizer's shape (transformers' ChameleonVQVAEConfig defaults:
512x512 pixels, four 2x downsamplings, 32x32 = 1024 tokens per image, 8192 codes).
`tiny` and `small` are this harness's own sizes; `tiny` has a tiny VQ tokenizer (32x32 pixels,
one 2x downsampling) that makes 16x16 = 256 tokens per image: a quarter of the paper's image
length, so that the CPU's tiny matrix fits its time (docs/families/chameleon.md).

Random weights need a vocabulary map (docs/facts.md): `<image>` and one `IMGIMG...Z` entry per codebook
index. The layout here is this harness's choice, modelled on the released tokenizer (codes from
id 4, then end-of-image and begin-of-image, as in Chameleon 7B/34B); a loaded checkpoint brings
its own map, and `vocab_layout` reads either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import ChameleonConfig, ChameleonForConditionalGeneration

from harness.errors import HarnessError
from harness.families.chameleon.presets import PRESETS, image_tokens_per_image, preset_image_tokens
from harness.families.models import FamilyModels

__all__ = ["PRESETS", "image_tokens_per_image", "preset_image_tokens"]

# Vocabulary layout for random weights: specials, then the codebook, then image delimiters.
BOS_ID, EOS_ID, PAD_ID = 1, 2, 3
FIRST_IMAGE_ID = 4
EOI_NAME, BOI_NAME, IMAGE_PLACEHOLDER = "<eoss>", "<racm3:break>", "<image>"
DIGIT_LETTERS = "ABCDEFGHIJ"  # the released tokenizer spells code digits as letters: 12 -> IMGIMGBCZ


def image_token_name(code: int) -> str:
    return "IMGIMG" + "".join(DIGIT_LETTERS[int(digit)] for digit in str(code)) + "Z"


def vocabulary_map(num_codes: int, vocab_size: int) -> dict[str, int]:
    """Names -> ids: specials, one entry per codebook index, image delimiters, plain text ids."""
    names = {"<unk>": 0, "<s>": BOS_ID, "</s>": EOS_ID, "<pad>": PAD_ID}
    names.update({image_token_name(code): FIRST_IMAGE_ID + code for code in range(num_codes)})
    after = FIRST_IMAGE_ID + num_codes
    names.update({EOI_NAME: after, BOI_NAME: after + 1, IMAGE_PLACEHOLDER: after + 2})
    if after + 3 >= vocab_size:
        raise HarnessError(f"vocabulary of {vocab_size} has no room for text next to {num_codes} image codes")
    return names


def config(preset: str) -> ChameleonConfig:
    values = dict(PRESETS[preset])
    vq = values["vq_config"]
    return ChameleonConfig(
        **values,
        vocabulary_map=vocabulary_map(vq["num_embeddings"], values["vocab_size"]),
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, tie_word_embeddings=False,
    )


def random(model_config: ChameleonConfig) -> ChameleonForConditionalGeneration:
    return ChameleonForConditionalGeneration(model_config)


def load(folder, dtype) -> ChameleonForConditionalGeneration:
    return ChameleonForConditionalGeneration.from_pretrained(folder, dtype=dtype, local_files_only=True)


@dataclass(frozen=True)
class VocabLayout:
    """The ids a runner needs, read from a config's vocabulary map (random or loaded)."""

    image_ids: torch.Tensor  # [codes]: token id of each codebook index
    text_ids: torch.Tensor  # ids a synthetic text prompt draws from (no image token, no special)
    bos: int
    pad: int
    boi: int
    eoi: int
    vocab_size: int

    def image_mask(self, device) -> torch.Tensor:
        """[vocab] True at image-token ids."""
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        mask[self.image_ids] = True
        return mask.to(device)

    def to(self, device) -> VocabLayout:
        return VocabLayout(
            self.image_ids.to(device), self.text_ids.to(device), self.bos, self.pad, self.boi, self.eoi,
            self.vocab_size,
        )


def vocab_layout(model_config: ChameleonConfig) -> VocabLayout:
    names = model_config.vocabulary_map or {}
    missing = [name for name in (IMAGE_PLACEHOLDER, BOI_NAME, EOI_NAME) if name not in names]
    if missing:
        raise HarnessError(f"chameleon config's vocabulary_map lacks {', '.join(missing)}")
    codes = sorted((name, token) for name, token in names.items() if name.startswith("IMGIMG"))
    by_code = {int("".join(str(DIGIT_LETTERS.index(c)) for c in name[6:-1])): token for name, token in codes}
    image_ids = torch.tensor([by_code[code] for code in range(len(by_code))])
    special = {token for name, token in names.items() if name.startswith("<")} | set(by_code.values())
    bos = model_config.bos_token_id
    assert bos is not None, "chameleon config without bos_token_id"
    pad = model_config.pad_token_id if model_config.pad_token_id is not None else names.get("<pad>", 0)
    special |= {bos, pad, model_config.eos_token_id}
    text_ids = torch.tensor([token for token in range(model_config.vocab_size) if token not in special])
    return VocabLayout(image_ids, text_ids, bos, pad, names[BOI_NAME], names[EOI_NAME], model_config.vocab_size)


MODELS = FamilyModels(presets=PRESETS, config=config, random=random, load=load)
