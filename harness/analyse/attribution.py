"""Which operator categories a changed phase owes its change to ("decode +1.2 ms: linear +0.8 ms,
idle +0.3 ms"), from the profiled iterations of a baseline and a current run. Pure functions.

The profiled iteration runs the same draw of lengths for the same case definition (fingerprint),
so its per-phase category seconds are comparable between runs. They describe one iteration,
not the timed samples: the attribution explains a verdict, it never decides one.
"""

from __future__ import annotations

from collections.abc import Mapping

# The phases a metric covers (docs/profiling.md names every family's stages); None: every phase both
# profiles have, since each stage is part of the end-to-end time. A phase a profile lacks is skipped.
METRIC_PHASES: dict[str, tuple[str, ...] | None] = {
    "ttft_s": ("vq_encode", "speech_encoder", "text_encoder", "prefill", "text_decoder_prefill"),  # before the first token
    "tpot_s": ("decode", "text_decode", "image_decode", "cfg", "text_decoder_steps", "kv_reorder"),  # once per token
    "e2e_s": None,
}
PROFILE_FIELDS = ("breakdown", "idle_frac", "profile_wall_s")  # what a baseline keeps of a profile
TOP_CATEGORIES = 3
MS_PER_S = 1e3


def profile_of(record: Mapping) -> dict:
    """The part of a case record an attribution needs; {} when it was not profiled."""
    if not record.get("breakdown"):
        return {}
    return {name: record.get(name) or {} for name in PROFILE_FIELDS}


def phase_seconds(profile: Mapping, phase: str) -> dict[str, float] | None:
    """Seconds per category of one phase, idle included; None when the phase was not profiled."""
    breakdown = (profile.get("breakdown") or {}).get(phase)
    wall_s = (profile.get("profile_wall_s") or {}).get(phase)
    if breakdown is None or not wall_s:
        return None
    seconds = dict(breakdown)
    idle = (profile.get("idle_frac") or {}).get(phase)
    if idle is not None:
        seconds["idle"] = idle * wall_s
    return seconds


def _ms(seconds: float) -> str:
    return f"{seconds * MS_PER_S:+.2f} ms"


def attribute_phase(phase: str, baseline: Mapping, current: Mapping, sign: int, top: int = TOP_CATEGORIES) -> str:
    before, after = phase_seconds(baseline, phase), phase_seconds(current, phase)
    if before is None or after is None:
        return ""
    deltas = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in set(before) | set(after)}
    moved = sorted((d for d in deltas.items() if sign * d[1] > 0), key=lambda d: -sign * d[1])[:top]
    wall_change = baseline["profile_wall_s"][phase], current["profile_wall_s"][phase]
    head = f"{phase} {_ms(wall_change[1] - wall_change[0])}"
    return f"{head}: " + ", ".join(f"{name} {_ms(delta)}" for name, delta in moved) if moved else head


def attribute(metric: str, baseline: Mapping, current: Mapping, regressed: bool) -> str:
    """For a regressed metric, the categories whose time grew most (shrank, for an improved
    one), per phase the metric covers; "" when either side has no profile."""
    sign = 1 if regressed else -1
    parts = [attribute_phase(phase, baseline, current, sign) for phase in metric_phases(metric, baseline, current, sign)]
    text = "; ".join(part for part in parts if part)
    return f"profiled iteration: {text}" if text else ""


def metric_phases(metric: str, baseline: Mapping, current: Mapping, sign: int) -> tuple[str, ...]:
    """The phases a metric's attribution covers; over every phase (e2e), only those that moved
    the verdict's way (sign 1: grew), in the current profile's order."""
    if metric not in METRIC_PHASES:
        return ()
    named = METRIC_PHASES[metric]
    if named is not None:
        return named
    before, after = baseline.get("profile_wall_s") or {}, current.get("profile_wall_s") or {}
    shared = [phase for phase in (current.get("breakdown") or {}) if phase in (baseline.get("breakdown") or {})]
    return tuple(phase for phase in shared if phase in before and phase in after and sign * (after[phase] - before[phase]) > 0)
