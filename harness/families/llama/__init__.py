"""Llama (code generation, task `tt`): transformers' LlamaForCausalLM under the shared greedy
decoder loop (harness/families/decoder.py). Presets in `model.py`; docs/families/llama.md."""

from __future__ import annotations

from harness.families.stacks import DECODER_STACKS, DRAFT_FRIENDLY_STACKS, QUANT_OPT_IN, QUANT_STACKS, SPECULATIVE_STACKS
from harness.spec.matrix import FamilySpec, Workload
from harness.spec.workload import Lengths, empirical

# Real code-generation lengths: (prompt, solution) token pairs of the 164 HumanEval tasks under the
# Llama 2 tokenizer (docs/workloads.md). tiny scales them to a fifth (prompts <= 87 tokens, outputs
# <= 60) and runs them on the two attention baselines only, to stay cheap.
HUMANEVAL = empirical("humaneval")
HUMANEVAL_TINY = Workload(1, empirical("humaneval", scale=0.2), stacks=(("eager",), ("sdpa",)))

SPEC = FamilySpec(
    name="llama",
    tasks=("tt",),
    stacks=DECODER_STACKS + QUANT_STACKS + SPECULATIVE_STACKS,
    opt_in=QUANT_OPT_IN,
    workloads={
        "tiny": (
            Workload(1, Lengths(128, 64)),
            Workload(4, Lengths(32, 32)),
            Workload(1, Lengths(64, 32, dist="lognormal")),
            Workload(1, Lengths(32, 48), weights="draft-friendly", stacks=DRAFT_FRIENDLY_STACKS),
            HUMANEVAL_TINY,
        ),
        "small": (
            Workload(1, Lengths(512, 128)),
            Workload(8, Lengths(256, 64)),
            Workload(1, Lengths(256, 128), weights="draft-friendly", stacks=DRAFT_FRIENDLY_STACKS),
        ),
        "paper-7b": (Workload(1, Lengths(1024, 256)), Workload(8, Lengths(1024, 256)), Workload(1, HUMANEVAL)),
        "paper": (
            Workload(1, Lengths(1024, 256)), Workload(1, Lengths(512, 256, dist="lognormal")), Workload(1, HUMANEVAL),
        ),
    },
    # 2 (issue 20): the prefill runs the LM head on the last prompt position only, as generate() and
    # serving engines do; TTFT (and e2e) no longer include [prompt, vocab] logits.
    measurement_version=2,
    capabilities=frozenset({"hf_attention", "kv_cache", "step_wrappers", "quantized_copy", "speculative_loop"}),
    models="harness.families.llama.model:MODELS",
    runner="harness.families.decoder:DecoderRunner",
    fit="decoder",
    sol="harness.measure.profile.sol:decoder_sol",
)
