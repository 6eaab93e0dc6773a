"""The declared matrix: which tasks, stacks and workloads each family has, per preset.

Stacks are cumulative in the paper's spirit; the first one is the family's baseline.
Workload lengths here are this harness's choices (the paper's distributions are not public).
"""

from __future__ import annotations

from harness.errors import unknown_choice
from harness.matrix import FamilySpec, Workload
from harness.models.chameleon import preset_image_tokens
from harness.models.seamless import DEFAULT_NUM_BEAMS
from harness.workload import Lengths

DECODER_STACKS = (
    ("eager",),
    ("sdpa",),
    ("sdpa", "static"),
    ("sdpa", "compile"),
    ("sdpa", "static", "compile"),
    ("sdpa", "static", "cudagraphs"),
    ("sdpa", "static", "compile", "cudagraphs"),
)

# Quantization on top of the decoder ladder, cumulative as the paper's (quantization comes after
# CUDA graphs): every scheme on the full ladder (CUDA: static cache + compile + CUDA graphs) and
# on plain sdpa (what quantization alone buys, on any device); int8 dynamic also on the CPU's
# top rung (sdpa + static + compile; FACTS.md: there it is on par with bf16). Schemes a device
# or the installed torchao cannot run are dropped at expansion with the reason.
QUANT_SCHEMES = ("int8dq", "int8wo", "int4wo", "autoquant", "dynint8")
QUANT_STACKS = (
    *((("sdpa", scheme)) for scheme in QUANT_SCHEMES),
    ("sdpa", "static", "compile", "int8dq"),
    *((("sdpa", "static", "compile", "cudagraphs", scheme)) for scheme in QUANT_SCHEMES),
)
# Speculative greedy decoding (harness/speculative.py): the decoder runner's loop, llama only.
SPECULATIVE_STACKS = (("sdpa", "selfspec"), ("sdpa", "lookup"))
# Where acceptance is exercised: the labelled synthetic draft-friendly weights (random weights
# accept almost nothing), with the baseline and plain sdpa beside the speculative stacks.
DRAFT_FRIENDLY_STACKS = (("eager",), ("sdpa",), *SPECULATIVE_STACKS)

# HSTU: padded is the baseline; `fixed` gives the fixed shapes compile, flex and CUDA graphs need.
# No jagged+compile: its per-history lengths make compile guard on them and recompile per batch.
RECOMMENDER_STACKS = (
    ("padded",),
    ("jagged",),
    ("fixed",),
    ("fixed", "compile"),
    ("fixed", "flex"),
    ("fixed", "cudagraphs"),
    ("fixed", "compile", "cudagraphs"),
)

# Batch-size sweeps (--batch-sizes sweep), per preset: powers of two, cut at expansion at the
# largest batch whose estimated memory fits the device (harness/fit.py). tiny stops at 16: it
# fits anything, and the sweep is for seeing a lever's win hold or vanish, in CPU minutes.
BATCH_SWEEPS = {"tiny": (1, 2, 4, 8, 16)}
DEFAULT_BATCH_SWEEP = tuple(2**power for power in range(9))  # 1 .. 256


def batch_sweep(preset: str) -> tuple[int, ...]:
    return BATCH_SWEEPS.get(preset, DEFAULT_BATCH_SWEEP)


# Compiling a quantized decode step costs 30-60 s per case on the 2-core CI CPU (seen here), so
# on tiny it runs only when named (--stacks sdpa+static+compile+int8dq). Chameleon's tiny cases
# cost 5-15 s each there: CI checks its quantized path with int8dq alone.
QUANT_OPT_IN = {"tiny": (("sdpa", "static", "compile", "int8dq"),)}
CHAMELEON_QUANT_OPT_IN = {"tiny": QUANT_OPT_IN["tiny"] + (("sdpa", "int8wo"), ("sdpa", "dynint8"))}
# A tiny `ti` case decodes 1024 image tokens, as the paper's: int8dq's per-token cost on the CPU
# (about 11 ms against 2.4 ms for sdpa, seen here) would make it 2.5 of the main job's minutes.
CHAMELEON_TI_OPT_IN = {"tiny": (("sdpa", "int8dq"),)}

# SeamlessM4T v2: the reorder lever needs fixed buffers (static), and compile comes last, over
# the step the in-place reorder keeps fixed. No CUDA graphs yet: the cross-attention cache is
# rebuilt per input (its length is the input's), so a captured step would read stale buffers.
SEAMLESS_STACKS = (
    ("eager",),
    ("sdpa",),
    ("sdpa", "static"),
    ("sdpa", "static", "inplace-reorder"),
    ("sdpa", "static", "inplace-reorder", "compile"),
)


def seamless_workloads(speech_frames: int, text_tokens: int, gen_len: int, beams: tuple[int, ...]) -> tuple[Workload, ...]:
    """Each task at each beam count (1 = greedy). prompt_len is feature frames for speech input
    (50 per second of audio after the feature extractor's stacking) and tokens for text input;
    speech-in and text-to-speech inputs are drawn from a length distribution, st and tt are fixed."""
    prompts = {
        "ss": Lengths(speech_frames, gen_len, dist="lognormal"),
        "st": Lengths(speech_frames, gen_len),
        "ts": Lengths(text_tokens, gen_len, dist="lognormal"),
        "tt": Lengths(text_tokens, gen_len),
    }
    return tuple(Workload(1, lengths, (task,), beams=count) for task, lengths in prompts.items() for count in beams)


FAMILIES = {
    "llama": FamilySpec(
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
            ),
            "small": (
                Workload(1, Lengths(512, 128)),
                Workload(8, Lengths(256, 64)),
                Workload(1, Lengths(256, 128), weights="draft-friendly", stacks=DRAFT_FRIENDLY_STACKS),
            ),
            "paper-7b": (Workload(1, Lengths(1024, 256)), Workload(8, Lengths(1024, 256))),
            "paper": (Workload(1, Lengths(1024, 256)), Workload(1, Lengths(512, 256, dist="lognormal"))),
        },
    ),
    "hstu": FamilySpec(
        name="hstu",
        tasks=("rank", "retrieve"),
        stacks=RECOMMENDER_STACKS,
        runner="recommender",
        # prompt_len: history length (median of per-user draws); gen_len: candidates (rank) or k
        # (retrieve); items: rows of the item table. longtail: skewed histories, where padding costs.
        workloads={
            "tiny": (Workload(8, Lengths(32, 16, dist="longtail"), items=20_000),),
            "small": (
                Workload(32, Lengths(64, 128, dist="longtail"), items=100_000),
                Workload(32, Lengths(64, 128, dist="longtail"), items=1_000_000),
            ),
            "paper-ml1m": (Workload(128, Lengths(64, 100, dist="longtail"), items=4_000),),
            "paper": (
                Workload(128, Lengths(100, 512, dist="longtail"), items=100_000),
                Workload(128, Lengths(100, 512, dist="longtail"), items=1_000_000),
                Workload(32, Lengths(500, 512), items=1_000_000),
            ),
            "paper-long": (Workload(16, Lengths(1000, 512, dist="longtail"), items=1_000_000),),
        },
    ),
    # Each workload names its task: captioning (short prompt after the image, tens of tokens
    # out), VQA (a longer question, a short answer), text to image (exactly one image of the
    # preset's image-token count out: 1024 for the paper shapes), text to text.
    "chameleon": FamilySpec(
        name="chameleon",
        tasks=("it", "itt", "ti", "tt"),
        stacks=DECODER_STACKS + QUANT_STACKS,
        opt_in=CHAMELEON_QUANT_OPT_IN,
        runner="chameleon",
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
    ),
    # Beam count is a case axis: 1 (greedy) and 4 on the small presets (the width the reorder
    # lever's speed-up is quoted at); the generation config's default on the paper preset.
    "seamless": FamilySpec(
        name="seamless",
        tasks=("ss", "st", "ts", "tt"),
        stacks=SEAMLESS_STACKS,
        runner="seamless",
        workloads={
            "tiny": seamless_workloads(speech_frames=64, text_tokens=16, gen_len=16, beams=(1, 4)),
            "small": seamless_workloads(speech_frames=400, text_tokens=48, gen_len=64, beams=(1, 4)),
            "paper": seamless_workloads(speech_frames=500, text_tokens=64, gen_len=128, beams=(1, DEFAULT_NUM_BEAMS)),
        },
    ),
}


def family_spec(name: str) -> FamilySpec:
    try:
        return FAMILIES[name]
    except KeyError:
        raise unknown_choice("family", name, FAMILIES) from None
