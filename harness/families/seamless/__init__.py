"""SeamlessM4T v2 (speech and text translation: ss, st, ts, tt, greedy and beam search):
transformers' SeamlessM4Tv2Model under our own staged runner (`runner.py`); presets in
`model.py`; docs/families/seamless.md."""

from __future__ import annotations

from harness.spec.matrix import FamilySpec, TaskShape, Workload
from harness.spec.workload import Lengths, empirical

# Default beam count of the synthetic generation config: seamless_communication's Translator
# decodes text with beam_size=5. (The released Hugging Face generation config is not available
# offline here; a loaded checkpoint's own num_beams is what `codes(model).num_beams` reports.)
DEFAULT_NUM_BEAMS = 5

TASKS = {
    "ss": TaskShape(inputs=frozenset({"speech"}), outputs=frozenset({"speech"})),
    "st": TaskShape(inputs=frozenset({"speech"}), outputs=frozenset({"text"})),
    "ts": TaskShape(inputs=frozenset({"text"}), outputs=frozenset({"speech"})),
    "tt": TaskShape(inputs=frozenset({"text"}), outputs=frozenset({"text"})),
}

# The reorder lever needs fixed buffers (static), and compile comes last, over the step the
# in-place reorder keeps fixed. No CUDA graphs yet: the cross-attention cache is rebuilt per
# input (its length is the input's), so a captured step would read stale buffers.
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


def telephone_workloads(lengths: Lengths, tasks: tuple[str, ...], beams: tuple[int, ...], **fields) -> tuple[Workload, ...]:
    """Real speech durations: telephone prompts (one speaker, not read sentences), English phrase
    in as feature frames and its Spanish counterpart's duration as the output text (kind
    `asterisk`, docs/workloads.md), for the speech-in tasks at each beam count."""
    return tuple(Workload(1, lengths, (task,), beams=count, **fields) for task in tasks for count in beams)


SPEC = FamilySpec(
    name="seamless",
    tasks=tuple(TASKS),
    stacks=SEAMLESS_STACKS,
    # Beam count is a case axis: 1 (greedy) and 4 on the small presets (the width the reorder
    # lever's speed-up is quoted at); the generation config's default on the paper preset.
    workloads={
        # tiny: half the durations, capped at 192 frames (3.84 s of scaled audio) and 32 tokens,
        # speech-to-speech greedy on the two attention baselines only
        "tiny": seamless_workloads(speech_frames=64, text_tokens=16, gen_len=16, beams=(1, 4)) + telephone_workloads(
            empirical("asterisk", scale=0.5, prompt_cap=192, gen_cap=32), ("ss",), (1,), stacks=(("eager",), ("sdpa",)),
        ),
        "small": seamless_workloads(speech_frames=400, text_tokens=48, gen_len=64, beams=(1, 4)),
        "paper": seamless_workloads(speech_frames=500, text_tokens=64, gen_len=128, beams=(1, DEFAULT_NUM_BEAMS))
        + telephone_workloads(empirical("asterisk"), ("ss", "st"), (1, DEFAULT_NUM_BEAMS)),
    },
    capabilities=frozenset({"hf_attention", "kv_cache", "step_wrappers", "beam_reorder"}),
    models="harness.families.seamless.model:MODELS",
    runner="harness.families.seamless.runner:SeamlessRunner",
    sol="harness.families.seamless.sol:seamless_sol",
)
