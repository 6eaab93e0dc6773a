"""Near-ties of text-to-unit's units, for inputs whose text the two stacks agree on (the rule and
why: harness/families/seamless/ties.py). Both stacks' text-to-unit passes are run again outside
timing, each under its own attention implementation, with the duration predictor's output read
by a forward hook (transformers rounds it inside the model, round(expm1(x)), at least 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.measure.equivalence import TIE_RELATIVE, worst_pair

DURATION_PREDICTOR = "t2u_model.model.decoder.duration_predictor"  # inside SeamlessM4Tv2Model


@dataclass
class UnitPass:
    """One stack's text-to-unit pass, on the CPU."""

    log_durations: torch.Tensor  # [batch, chars] the duration predictor's output, float32
    characters: torch.Tensor  # [batch, chars] bool: real characters (not padding)
    logits: torch.Tensor  # [batch, units, t2u vocab] float32, -inf where the vocoder has no unit
    padding: torch.Tensor  # [batch, units] bool: real units

    def durations(self, row: int) -> torch.Tensor:
        """The row's rounded durations, as the model rounds them."""
        rounded = torch.clamp(torch.round(torch.expm1(self.log_durations[row])).long(), min=1)
        return rounded.masked_fill(~self.characters[row], 0)

    def units(self, row: int) -> list[int]:
        return self.logits[row].argmax(-1)[self.padding[row]].tolist()


def trimmed(units: torch.Tensor, row: int, pad: int) -> list[int]:
    """A compared value's units of one row, without its padding."""
    return [unit for unit in units[row].tolist() if unit != pad]


def same_row(expected: torch.Tensor, got: torch.Tensor | None, row: int, pad: int) -> bool:
    return got is not None and trimmed(expected, row, pad) == trimmed(got, row, pad)


@torch.no_grad()
def unit_pass(runner, session, prepared, text: torch.Tensor) -> UnitPass:
    """The session's text-to-unit pass over its own best text ([batch, tokens], no prefix)."""
    session.activate()
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, kwargs, output):
        captured.update(x=output.float().cpu(), characters=kwargs["padding_mask"].bool().cpu())

    handle = runner.model.get_submodule(DURATION_PREDICTOR).register_forward_hook(hook, with_kwargs=True)
    try:
        encoder = runner.encode(prepared.source)
        prefix = prepared.prefix[prepared.offsets.view(-1)]
        logits, padding = runner.unit_logits(torch.cat([prefix, text.to(prefix.device)], dim=1), encoder)
    finally:
        handle.remove()
    return UnitPass(captured["x"], captured["characters"], logits.cpu(), padding.cpu())


def duration_tie(mine: UnitPass, theirs: UnitPass, row: int, relative: float) -> str | None:
    """The first character whose rounded durations differ: by one, and the baseline's duration
    before rounding within rounding of the half-way point between the two."""
    ours, other = mine.durations(row), theirs.durations(row)
    first = int((ours != other).nonzero()[0])
    if abs(int(ours[first]) - int(other[first])) != 1:
        return None
    x = mine.log_durations[row]
    duration = float(torch.expm1(x[first]))
    half_way = min(int(ours[first]), int(other[first])) + 0.5
    gap = abs(duration - half_way)
    allowed = relative * (1 + duration) * float(x[mine.characters[row]].abs().max())  # d expm1(x) / dx = 1 + expm1(x)
    if gap > allowed:
        return None
    return (f"input {row}: unit durations differ from character {first} ({int(ours[first])} vs {int(other[first])}), "
            f"a near-tie: {duration:.4g} is {gap:.3g} <= {allowed:.3g} from {half_way}")


def units_tie(mine: UnitPass, theirs: UnitPass, row: int, relative: float) -> str | None:
    """The same durations: every differing unit a tie of the baseline's logits at its position."""
    ours, other = mine.units(row), theirs.units(row)
    pairs = []
    for index in [index for index, (a, b) in enumerate(zip(ours, other, strict=True)) if a != b]:
        logits = mine.logits[row, index]
        pairs.append((float(logits[ours[index]] - logits[other[index]]), relative * float(logits[torch.isfinite(logits)].abs().max())))
    if not all(abs(gap) <= allowed for gap, allowed in pairs):
        return None
    return f"input {row}: units differ at {len(pairs)} positions, all near-ties: {worst_pair(pairs)}"


def unit_ties(runner, baseline, session, prepared, values: tuple, rows: list[int]) -> dict[int, str] | None:
    """A note per row whose units differ (values: the baseline's and the other stack's
    Translation); None when one is no tie, or a pass does not reproduce its run's units."""
    pad, relative = runner.model.config.t2u_pad_token_id, TIE_RELATIVE[runner.case.dtype]
    mine, theirs = (unit_pass(runner, stack, prepared, value.text) for stack, value in zip((baseline, session), values, strict=True))
    notes = {}
    for row in rows:
        if any(done.units(row) != trimmed(value.units, row, pad) for done, value in zip((mine, theirs), values, strict=True)):
            return None
        same_durations = torch.equal(mine.durations(row), theirs.durations(row))
        found = (units_tie if same_durations else duration_tie)(mine, theirs, row, relative)
        if found is None:
            return None
        notes[row] = found
    return notes
