"""SeamlessM4T v2 family (ss, st, ts, tt): transformers' SeamlessM4Tv2Model, one pipeline of
speech encoder (w2v-BERT conformer), text encoder, text decoder (NLLB style), non-autoregressive
text-to-unit model and HiFi-GAN unit vocoder.

`paper` is SeamlessM4T v2 large (docs/facts.md): transformers' SeamlessM4Tv2Config defaults are that
model's shapes, written out here so that the preset and its fingerprint say what they are.
`tiny` and `small` are this harness's own sizes.

Random weights need no tokenizer: the generation config carries what the pipeline reads from it
(docs/facts.md): target-language codes for the text decoder, the text-to-unit model and the vocoder,
and the subword and character tables the text-to-unit model counts characters with. The tables
here are synthetic (this harness's choice): each text id spells a short seeded subword over a
small alphabet, some of them starting with the word-boundary mark, as SentencePiece pieces do.
A loaded checkpoint brings its own generation config.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from typing import Any

from transformers import GenerationConfig, SeamlessM4Tv2Config, SeamlessM4Tv2Model

from harness.families.models import FamilyModels
from harness.families.seamless import DEFAULT_NUM_BEAMS

# SeamlessM4T v2 large (= transformers' SeamlessM4Tv2Config defaults), written out.
PAPER: dict[str, Any] = dict(
    vocab_size=256102, t2u_vocab_size=10082, char_vocab_size=10943, hidden_size=1024,
    encoder_layers=24, encoder_ffn_dim=8192, encoder_attention_heads=16,
    decoder_layers=24, decoder_ffn_dim=8192, decoder_attention_heads=16, max_position_embeddings=4096,
    speech_encoder_layers=24, speech_encoder_attention_heads=16, speech_encoder_intermediate_size=4096,
    feature_projection_input_dim=160, num_adapter_layers=1, adaptor_kernel_size=8, adaptor_stride=8,
    t2u_encoder_layers=6, t2u_encoder_ffn_dim=8192, t2u_encoder_attention_heads=16,
    t2u_decoder_layers=6, t2u_decoder_ffn_dim=8192, t2u_decoder_attention_heads=16,
    t2u_max_position_embeddings=4096, t2u_variance_predictor_embed_dim=1024,
    t2u_variance_predictor_hidden_dim=256, upsample_initial_channel=512,
    unit_hifi_gan_vocab_size=10000, unit_embed_dim=1280, lang_embed_dim=256, spkr_embed_dim=256,
    vocoder_num_langs=36, vocoder_num_spkrs=200, vocoder_offset=4,
)

# tiny and small untie the output head from the embeddings: with random tied weights every step
# repeats its input token (the token's own embedding dominates the hidden state), so beams never
# diverge and a wrong KV-cache reorder would go unseen. The paper preset ties, as the released model.
UNTIED: dict[str, Any] = dict(tie_word_embeddings=False)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        **UNTIED,
        vocab_size=512, t2u_vocab_size=72, char_vocab_size=64, hidden_size=64,
        encoder_layers=2, encoder_ffn_dim=128, encoder_attention_heads=4,
        decoder_layers=2, decoder_ffn_dim=128, decoder_attention_heads=4, max_position_embeddings=512,
        speech_encoder_layers=2, speech_encoder_attention_heads=4, speech_encoder_intermediate_size=128,
        feature_projection_input_dim=160, num_adapter_layers=1, adaptor_kernel_size=8, adaptor_stride=8,
        t2u_encoder_layers=1, t2u_encoder_ffn_dim=128, t2u_encoder_attention_heads=4,
        t2u_decoder_layers=1, t2u_decoder_ffn_dim=128, t2u_decoder_attention_heads=4,
        t2u_max_position_embeddings=2048, t2u_variance_predictor_embed_dim=64,
        t2u_variance_predictor_hidden_dim=32, upsample_initial_channel=32,
        unit_hifi_gan_vocab_size=64, unit_embed_dim=32, lang_embed_dim=8, spkr_embed_dim=8,
        vocoder_num_langs=4, vocoder_num_spkrs=2, vocoder_offset=4,
    ),
    "small": dict(
        **UNTIED,
        vocab_size=32000, t2u_vocab_size=2052, char_vocab_size=2000, hidden_size=512,
        encoder_layers=6, encoder_ffn_dim=2048, encoder_attention_heads=8,
        decoder_layers=6, decoder_ffn_dim=2048, decoder_attention_heads=8, max_position_embeddings=1024,
        speech_encoder_layers=6, speech_encoder_attention_heads=8, speech_encoder_intermediate_size=1024,
        feature_projection_input_dim=160, num_adapter_layers=1, adaptor_kernel_size=8, adaptor_stride=8,
        t2u_encoder_layers=2, t2u_encoder_ffn_dim=2048, t2u_encoder_attention_heads=8,
        t2u_decoder_layers=2, t2u_decoder_ffn_dim=2048, t2u_decoder_attention_heads=8,
        t2u_max_position_embeddings=4096, t2u_variance_predictor_embed_dim=512,
        t2u_variance_predictor_hidden_dim=128, upsample_initial_channel=256,
        unit_hifi_gan_vocab_size=2048, unit_embed_dim=512, lang_embed_dim=64, spkr_embed_dim=64,
        vocoder_num_langs=8, vocoder_num_spkrs=8, vocoder_offset=4,
    ),
    "paper": PAPER,
}

# Special ids as in the released vocabulary (= the config defaults): pad 0, unk 1, bos 2, eos 3.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS = {PAD_ID: "<pad>", UNK_ID: "<unk>", BOS_ID: "<s>", EOS_ID: "</s>"}
LANGUAGES = ("eng", "fra")  # source and target; their codes take the last ids of the vocabulary
SPACE = "▁"  # SentencePiece's word-boundary mark, which the character count treats specially
ALPHABET = SPACE + "abcdefghijklmnopqrstuvwxyz"
FIRST_CHAR_ID = 4  # character ids follow the four specials
MAX_SUBWORD_CHARS = 5


def synthetic_subword(token_id: int, seed: int = 0) -> str:
    """A short seeded subword for one text id; about a third start a new word."""
    rng = _random.Random(f"{seed}-{token_id}")
    letters = "".join(rng.choice(ALPHABET[1:]) for _ in range(rng.randint(1, MAX_SUBWORD_CHARS - 1)))
    return (SPACE + letters) if rng.random() < 0.35 else letters


def language_ids(vocab_size: int) -> dict[str, int]:
    """Language code -> text id: the last ids of the vocabulary, as NLLB places its codes."""
    return {lang: vocab_size - len(LANGUAGES) + index for index, lang in enumerate(LANGUAGES)}


def generation_config(model_config: SeamlessM4Tv2Config) -> GenerationConfig:
    vocab_size = model_config.vocab_size
    languages = language_ids(vocab_size)
    id_to_text = {str(token): SPECIALS.get(token) or synthetic_subword(token) for token in range(vocab_size)}
    id_to_text.update({str(token): f"__{lang}__" for lang, token in languages.items()})
    return GenerationConfig(
        decoder_start_token_id=model_config.decoder_start_token_id, bos_token_id=BOS_ID,
        eos_token_id=EOS_ID, pad_token_id=PAD_ID, num_beams=DEFAULT_NUM_BEAMS,
        text_decoder_lang_to_code_id=languages,
        t2u_lang_code_to_id={lang: index for index, lang in enumerate(LANGUAGES)},
        vocoder_lang_code_to_id={lang: index for index, lang in enumerate(LANGUAGES)},
        id_to_text=id_to_text,
        char_to_id={char: FIRST_CHAR_ID + index for index, char in enumerate(ALPHABET)},
    )


def config(preset: str) -> SeamlessM4Tv2Config:
    return SeamlessM4Tv2Config(**PRESETS[preset])


def random(model_config: SeamlessM4Tv2Config) -> SeamlessM4Tv2Model:
    model = SeamlessM4Tv2Model(model_config)
    model.generation_config = generation_config(model_config)
    return model


def load(folder, dtype) -> SeamlessM4Tv2Model:
    return SeamlessM4Tv2Model.from_pretrained(folder, dtype=dtype, local_files_only=True)


@dataclass(frozen=True)
class Codes:
    """What the runner reads from a model's configs (random or loaded)."""

    src_lang_id: int  # text id of the source language (text input)
    tgt_lang_id: int  # text id of the target language (second decoder input)
    vocoder_lang_id: int
    decoder_start_id: int
    eos_id: int
    pad_id: int
    num_beams: int  # the generation config's default


def codes(model) -> Codes:
    gen = model.generation_config
    src, tgt = LANGUAGES
    return Codes(
        gen.text_decoder_lang_to_code_id[src], gen.text_decoder_lang_to_code_id[tgt],
        gen.vocoder_lang_code_to_id[tgt], model.config.decoder_start_token_id, gen.eos_token_id,
        gen.pad_token_id, gen.num_beams or 1,
    )


MODELS = FamilyModels(presets=PRESETS, config=config, random=random, load=load)
