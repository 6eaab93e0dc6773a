"""Llama family (code generation, task `tt`): transformers' LlamaForCausalLM.

`paper` is Code Llama 34B's shape (the paper's workload), `paper-7b` Llama 2 7B's (docs/facts.md).
`tiny` and `small` are this harness's own sizes, not the paper's.
"""

from typing import Any

from transformers import LlamaConfig, LlamaForCausalLM

from harness.families.models import FamilyModels

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(
        vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
    ),
    "small": dict(
        vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=4096,
    ),
    "paper-7b": dict(  # Llama 2 7B
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
    ),
    "paper": dict(  # Code Llama 34B
        vocab_size=32000, hidden_size=8192, intermediate_size=22016, num_hidden_layers=48,
        num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=16384,
        rope_theta=1e6,
    ),
}


def config(preset: str) -> LlamaConfig:
    return LlamaConfig(**PRESETS[preset], tie_word_embeddings=False)


def random(model_config: LlamaConfig) -> LlamaForCausalLM:
    return LlamaForCausalLM(model_config)


def load(folder, dtype) -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)


MODELS = FamilyModels(presets=PRESETS, config=config, random=random, load=load)
