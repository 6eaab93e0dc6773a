"""torch.nn.functional.scaled_dot_product_attention instead of eager attention."""

from functools import partial

from harness.levers import TRANSFORMERS_FAMILIES, Lever
from harness.levers.attention import brief, attention_evidence, sdpa_backends, set_attention


def evidence(session) -> dict:
    found = attention_evidence(session, wanted="sdpa")
    backends = sdpa_backends()
    return {**found, "sdpa_backends_enabled": backends} if backends else found


LEVER = Lever(
    name="sdpa",
    slot="attention",
    summary="fused scaled-dot-product attention",
    configure=partial(set_attention, implementation="sdpa"),
    brief=brief,
    families=TRANSFORMERS_FAMILIES,
    evidence=evidence,
)
