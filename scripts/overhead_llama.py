"""Save issue 20's Llama (vocabulary 32000, hidden 256, 4 layers; seeded random weights) to a folder,
for `pytest suites/test_overhead.py --benchmark --families llama --checkpoint-dir DIR` (docs/overhead.md).

    python scripts/overhead_llama.py /tmp/llama-v32k
"""

from __future__ import annotations

import argparse

import torch
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = dict(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=4, max_position_embeddings=2048)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(LlamaConfig(**CONFIG))
    model.save_pretrained(args.folder)
    print(f"saved a {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M-parameter Llama to {args.folder}")


if __name__ == "__main__":
    main()
