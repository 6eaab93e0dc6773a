"""Shared Hypothesis strategies for harness data types."""

from hypothesis import strategies as st

from harness.families import DECODER_STACKS, SPECULATIVE_STACKS
from harness.spec.matrix import Case
from harness.spec.workload import DISTRIBUTIONS, MIN_PROMPT_LEN, Lengths

lengths = st.builds(
    Lengths,
    prompt_len=st.integers(MIN_PROMPT_LEN, 4096),
    gen_len=st.integers(1, 2048),
    dist=st.sampled_from(("",) + tuple(DISTRIBUTIONS)),
)

cases = st.builds(
    Case,
    family=st.just("llama"),
    task=st.just("tt"),
    preset=st.sampled_from(("tiny", "small", "paper", "paper-7b")),
    dtype=st.sampled_from(("float32", "bfloat16", "float16")),
    batch_size=st.integers(1, 64),
    lengths=lengths,
    stack=st.sampled_from(DECODER_STACKS + SPECULATIVE_STACKS),
    weights=st.sampled_from(("", "draft-friendly")),
    params=st.sampled_from(((), (("exit_layer", 2), ("draft_len", 4)), (("max_ngram", 3), ("draft_len", 1)))),
)

finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite_floats | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
