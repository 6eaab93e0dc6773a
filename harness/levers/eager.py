"""Baseline: transformers' eager attention (matmul + softmax + matmul)."""

from functools import partial

from harness.levers import TRANSFORMERS_FAMILIES, Lever
from harness.levers.attention import brief, attention_evidence, set_attention

LEVER = Lever(
    name="eager",
    slot="attention",
    summary="eager attention (the baseline)",
    configure=partial(set_attention, implementation="eager"),
    brief=brief,
    families=TRANSFORMERS_FAMILIES,
    evidence=partial(attention_evidence, wanted="eager"),
)
