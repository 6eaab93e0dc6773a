"""Chameleon (mixed-modal: it, itt, ti, tt): transformers' ChameleonForConditionalGeneration under
the shared decoder loop, with its own image-token decode and classifier-free guidance
(`runner.py`); presets and task shapes in `presets.py`; docs/families/chameleon.md."""

from __future__ import annotations

from harness.families.chameleon.presets import preset_image_tokens
from harness.families.stacks import DECODER_STACKS, QUANT_OPT_IN, QUANT_STACKS
from harness.spec.matrix import FamilySpec, Workload
from harness.spec.workload import Lengths

# Chameleon's tiny cases cost 5-15 s each on the 2-core CI CPU: CI checks its quantized path
# with int8dq alone.
CHAMELEON_QUANT_OPT_IN = {"tiny": QUANT_OPT_IN["tiny"] + (("sdpa", "int8wo"), ("sdpa", "dynint8"))}
# A tiny `ti` case decodes 256 image tokens: int8dq's per-token cost on the CPU (about 11 ms against
# 2.4 ms for sdpa, seen here) would still add about 40 s to the main job.
CHAMELEON_TI_OPT_IN = {"tiny": (("sdpa", "int8dq"),)}

SPEC = FamilySpec(
    name="chameleon",
    tasks=("it", "itt", "ti", "tt"),
    stacks=DECODER_STACKS + QUANT_STACKS,
    opt_in=CHAMELEON_QUANT_OPT_IN,
    # Each workload names its task: captioning (short prompt after the image, tens of tokens
    # out), VQA (a longer question, a short answer), text to image (exactly one image of the
    # preset's image-token count out: 1024 for the paper shapes), text to text.
    workloads={
        preset: (
            Workload(1, Lengths(prompt_it, 32), ("it",)),
            Workload(1, Lengths(prompt_itt, 8), ("itt",)),
            Workload(1, Lengths(prompt_ti, preset_image_tokens(preset)), ("ti",), opt_in=CHAMELEON_TI_OPT_IN.get(preset, ())),
            Workload(1, Lengths(*tt), ("tt",)),
        )
        for preset, prompt_it, prompt_itt, prompt_ti, tt in (
            ("tiny", 8, 24, 16, (32, 32)),
            ("small", 16, 32, 32, (256, 128)),
            ("paper-7b", 16, 32, 32, (1024, 256)),
            ("paper", 16, 32, 32, (1024, 256)),
        )
    },
    capabilities=frozenset({"hf_attention", "kv_cache", "step_wrappers", "quantized_copy"}),
    models="harness.families.chameleon.model:MODELS",
    runner="harness.families.chameleon.runner:ChameleonRunner",
    fit="decoder",
    fit_rows="harness.families.chameleon.presets:fit_rows",
    sol="harness.measure.profile.sol:decoder_sol",  # a Llama-shaped decoder (its VQ encoder aside)
)
