"""Self-speculative decoding (LayerSkip style): the model's first layers draft, the full model verifies.

Parameters (RunOptions, shown in the case id): exit_layer (0: half the depth), draft_len.
Evidence: acceptance rate, mean accepted length, draft and verify forwards per output token.
With random weights acceptance is near 0; see harness/models/weights.py for the labelled
synthetic weights that exercise acceptance on the CPU.
"""

from functools import partial

from harness.levers import Lever
from harness.levers.speculation import brief, configure_drafting, drafting_evidence

LEVER = Lever(
    name="selfspec",
    slot="decoding",
    summary="self-speculative decoding: early-exit drafts verified by the full model",
    configure=partial(configure_drafting, method="selfspec"),
    evidence=drafting_evidence,
    brief=brief,
    families=frozenset({"llama"}),  # the decoder runner's loop; chameleon's select/encode loop has none
    params=("exit_layer", "draft_len"),
)
