"""Shared Hypothesis strategies for harness data types."""

from hypothesis import strategies as st

from harness.families import DECODER_STACKS, FAMILIES, SPECULATIVE_STACKS
from harness.spec.matrix import DTYPE_TOKENS, Case, stack_params
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

# Cases of every family, drawn from what each declares in its spec (harness/families/<name>/).
LEVER_PARAMS = {"draft_len": 4, "exit_layer": 2, "max_ngram": 3}  # a value for every Lever.params name
DTYPES = tuple(DTYPE_TOKENS)

family_names = st.sampled_from(sorted(FAMILIES))
dtype_sets = st.lists(st.sampled_from(DTYPES), min_size=1, max_size=len(DTYPES), unique=True).map(tuple)
# A family and one of its presets, as `expand` takes them.
family_presets = family_names.flatmap(
    lambda name: st.tuples(st.just(name), st.sampled_from(sorted(FAMILIES[name].workloads)))
)


@st.composite
def _family_cases(draw):
    spec = FAMILIES[draw(family_names)]
    task = draw(st.sampled_from(spec.tasks))
    preset = draw(st.sampled_from(sorted(spec.workloads)))
    workload = draw(st.sampled_from([w for w in spec.workloads[preset] if not w.tasks or task in w.tasks]))
    stack = draw(st.sampled_from([s for s in spec.stacks if not workload.stacks or s in workload.stacks]))
    return Case(
        spec.name, task, preset, draw(st.sampled_from(DTYPES)), workload.batch_size, workload.lengths, stack,
        workload.items, workload.weights, stack_params(stack, LEVER_PARAMS), workload.beams,
    )


family_cases = _family_cases()
