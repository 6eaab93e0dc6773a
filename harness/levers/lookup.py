"""Prompt-lookup decoding: drafts copied from where the last n-gram occurred before, verified
by the full model. No draft model; it pays off where outputs repeat their inputs (code, edits).

Parameters (RunOptions, shown in the case id): max_ngram, draft_len.
"""

from functools import partial

from harness.levers import Lever
from harness.levers.speculation import brief, configure_drafting, drafting_evidence

LEVER = Lever(
    name="lookup",
    slot="decoding",
    summary="prompt-lookup decoding: n-gram drafts verified by the full model",
    configure=partial(configure_drafting, method="lookup"),
    evidence=drafting_evidence,
    brief=brief,
    families=frozenset({"llama"}),
    params=("max_ngram", "draft_len"),
    # Why: lookup drafts only once the text repeats; 8 tokens of a random model rarely do, 32 do.
    quick_tokens=32,
)
