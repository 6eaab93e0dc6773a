"""Speculative greedy decoding: draft a few tokens cheaply, verify them with one full forward.

Two drafters share one loop (`speculative_generate`):
  * early exit (LayerSkip-style self-speculation): the first `exit_layer` decoder layers, then
    the final norm and lm_head, run token by token;
  * prompt lookup: the tokens that followed the first earlier occurrence (as in transformers'
    prompt lookup) of the last n-gram of prompt + output so far, n from `max_ngram` down to 1.

One round: draft up to `draft_len` tokens d1..dn after the last emitted token t; roll the cache
back to before the draft; run the full model once over [t, d1..dn]; accept the longest prefix
of drafts the full model agrees with (a), emit d1..da and the full model's own next token
(correction or bonus), and roll the cache back to the emitted tokens. Every emitted token is
the full model's greedy choice, so the output equals plain greedy decoding (up to rounding:
a forward over n+1 positions may round differently from n+1 one-token forwards).

Batch rows advance together (one cache length for the batch): a round accepts the shortest
accepted prefix over the rows, and lookup drafts the shortest candidate over the rows. Rows
that agreed further lose those tokens (they are re-derived next round), so acceptance falls
with batch size: that is the honest cost of batched speculation without ragged caches.

The drafted layers' cache entries are dropped before the verify forward, which recomputes
them: LayerSkip's reuse of the draft's early-layer cache is not done here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

METHODS = ("selfspec", "lookup")


@dataclass(frozen=True)
class Drafting:
    """What a speculative lever puts into the Plan."""

    method: str  # METHODS
    draft_len: int  # tokens drafted per verify forward (at most)
    exit_layer: int = 0  # selfspec: decoder layers the draft runs
    max_ngram: int = 0  # lookup: longest n-gram matched

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown drafting method {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.draft_len < 1:
            raise ValueError(f"draft_len must be at least 1, got {self.draft_len}")


@dataclass
class Bookkeeping:
    """Counts of one or more generations. Batch rows advance together, so a round counts once."""

    rounds: int = 0  # verify forwards of the full model (after prefill)
    drafted: int = 0  # draft tokens proposed
    accepted: int = 0  # of them, accepted by the full model
    draft_forwards: int = 0  # early-exit forwards (0 for lookup)
    output_tokens: int = 0  # tokens emitted after the first (prefill's) token

    def add_round(self, drafted: int, accepted: int, draft_forwards: int) -> None:
        if not 0 <= accepted <= drafted:
            raise ValueError(f"accepted {accepted} of {drafted} drafted tokens")
        self.rounds += 1
        self.drafted += drafted
        self.accepted += accepted
        self.draft_forwards += draft_forwards
        self.output_tokens += accepted + 1  # the accepted drafts and the full model's own token

    def merge(self, other: Bookkeeping) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    @property
    def mean_accepted_len(self) -> float | None:
        """Accepted draft tokens per verify forward (the full model's own token not counted)."""
        return self.accepted / self.rounds if self.rounds else None

    def summary(self) -> dict:
        def per_token(count):
            return count / self.output_tokens if self.output_tokens else None
        return {
            "acceptance_rate": self.acceptance_rate,
            "mean_accepted_len": self.mean_accepted_len,
            "drafted": self.drafted,
            "accepted": self.accepted,
            "verify_forwards": self.rounds,
            "output_tokens": self.output_tokens,
            "draft_forwards_per_token": per_token(self.draft_forwards),
            "verifies_per_token": per_token(self.rounds),
        }


def acceptance_figures(drafted: list[int], accepted: list[int], rounds: list[int]) -> dict:
    """acceptance_rate and mean_accepted_len over per-iteration counts (None without drafts)."""
    book = Bookkeeping(rounds=sum(rounds), drafted=sum(drafted), accepted=sum(accepted))
    return {"acceptance_rate": book.acceptance_rate, "mean_accepted_len": book.mean_accepted_len}


def accepted_prefix(drafts: torch.Tensor, verified: torch.Tensor) -> int:
    """Leading positions where every row's draft equals the full model's choice.

    drafts [B, n]; verified [B, n] (the full model's greedy token after each drafted prefix)."""
    if drafts.shape[1] == 0:
        return 0
    agree = (drafts == verified).all(dim=0).to(torch.int32)  # [n]: 1 where every row agrees
    return int(agree.cumprod(0).sum())


def crop_to(cache, length: int) -> None:
    """Every cache layer back to `length` tokens (dynamic: sliced; static: the write position
    moves back and stale entries are overwritten and never attended to)."""
    for layer in cache.layers:
        extra = layer.get_seq_length() - length
        if extra > 0:
            layer.crop(-extra)


@contextmanager
def early_exit(model, exit_layer: int):
    """The model runs only its first `exit_layer` decoder layers (then the final norm and
    lm_head), as transformers' own early-exit assistant does."""
    config = model.model.config
    full = config.num_hidden_layers
    if not 1 <= exit_layer < full:
        raise ValueError(f"exit_layer must be between 1 and {full - 1} for this {full}-layer model, got {exit_layer}")
    config.num_hidden_layers = exit_layer
    try:
        yield
    finally:
        config.num_hidden_layers = full


def draft_early_exit(session, token: torch.Tensor, length: int, count: int, drafting: Drafting, history) -> tuple[torch.Tensor, int]:
    """`count` greedy tokens from the early-exit model after `token` (at position `length`)."""
    drafts = []
    with early_exit(session.model, drafting.exit_layer):
        for index in range(count):
            positions = session.positions[:, length + index : length + index + 1]
            logits = session.model(input_ids=token, cache=session.cache, position_ids=positions, logits_to_keep=1).logits
            token = logits[:, -1].argmax(-1, keepdim=True)
            drafts.append(token)
    return (torch.cat(drafts, dim=1) if drafts else token[:, :0]), count


def lookup_continuation(sequence: list[int], count: int, max_ngram: int) -> list[int]:
    """Up to `count` tokens that followed the first earlier occurrence of the sequence's last
    n-gram, for n from `max_ngram` down to 1; [] when nothing matches."""
    for size in range(min(max_ngram, len(sequence) - 1), 0, -1):
        pattern = sequence[-size:]
        for start in range(len(sequence) - size):
            if sequence[start : start + size] == pattern:
                follow = sequence[start + size : start + size + count]
                if follow:
                    return follow
    return []


def draft_lookup(session, token: torch.Tensor, length: int, count: int, drafting: Drafting, history) -> tuple[torch.Tensor, int]:
    """Prompt-lookup candidates, cut to the shortest over the batch rows (no forward)."""
    found = [lookup_continuation(row, count, drafting.max_ngram) for row in history]
    shortest = min(len(row) for row in found) if count else 0
    drafts = torch.tensor([row[:shortest] for row in found], dtype=token.dtype).to(token.device)
    return drafts.reshape(token.shape[0], shortest), 0


DRAFTERS: dict[str, Callable] = {"selfspec": draft_early_exit, "lookup": draft_lookup}


@dataclass
class SpecGeneration:
    tokens: torch.Tensor  # [batch, gen_len] on the CPU
    marks_s: list[float]  # start to the marks "prefill", then per round "draft" and "verify"
    emitted: list[int] = field(default_factory=list)  # tokens emitted per round
    book: Bookkeeping = field(default_factory=Bookkeeping)


def spec_marks(gen_len: int) -> int:
    """Most clock marks `speculative_generate` records for gen_len tokens."""
    return 1 + 2 * max(gen_len - 1, 0)


@torch.no_grad()
def speculative_generate(session, input_ids: torch.Tensor, gen_len: int, clock) -> SpecGeneration:
    """Greedy generation of gen_len tokens with the session's Drafting (see the module doc)."""
    drafting = session.plan.drafting
    drafter = DRAFTERS[drafting.method]
    needs_history = drafting.method == "lookup"
    book = Bookkeeping()
    session.reset()
    draft_done = getattr(clock, "draft_done", clock.mark)
    last_mark = getattr(clock, "last_mark", clock.mark)
    clock.start()
    token = session.prefill(input_ids)  # the LM head on the last prompt position only (DecoderSession.step_logits)
    (last_mark if gen_len <= 1 else clock.mark)("prefill")
    pieces, emitted = [token], []
    history = [row + [last] for row, last in zip(input_ids.tolist(), token[:, 0].tolist(), strict=False)] if needs_history else None
    length, done = input_ids.shape[1], 1
    while done < gen_len:
        # never draft past the end: the round's last token is always the full model's own
        drafts, forwards = drafter(session, token, length, min(drafting.draft_len, gen_len - done - 1), drafting, history)
        crop_to(session.cache, length)
        draft_done("draft")
        drafted = drafts.shape[1]
        new, accepted = verify(session, token, drafts, length)
        length += accepted + 1
        crop_to(session.cache, length)
        (last_mark if done + accepted + 1 >= gen_len else clock.mark)("verify")
        book.add_round(drafted, accepted, forwards)
        pieces.append(new)
        emitted.append(accepted + 1)
        done += accepted + 1
        token = new[:, -1:]
        if history is not None:
            for row, more in zip(history, new.tolist(), strict=False):
                row.extend(more)
    return SpecGeneration(torch.cat(pieces, dim=1).cpu(), clock.elapsed_s(), emitted, book)


def verify(session, token: torch.Tensor, drafts: torch.Tensor, length: int) -> tuple[torch.Tensor, int]:
    """One full-model forward over the last token and the drafts: the accepted drafts followed by
    the full model's own next token, and how many drafts were accepted."""
    drafted = drafts.shape[1]
    feed = torch.cat([token, drafts], dim=1)
    positions = session.positions[:, length : length + drafted + 1]
    # every fed position's logits are needed (a choice after each draft, then the bonus):
    # the LM head runs on exactly the drafted + 1 positions, as logits_to_keep would keep them
    logits = session.model(input_ids=feed, cache=session.cache, position_ids=positions).logits
    verified = logits.argmax(-1)  # [B, drafted + 1]
    accepted = accepted_prefix(drafts, verified[:, :drafted])
    return verified[:, : accepted + 1], accepted  # == the accepted drafts, then the full model's next token


class RoundPhaseClock:
    """The profiled iteration's clock: every mark on the raw clock, but phase ranges (the
    profiler's "decode" ranges, counted as tokens) per verify round, drafting included; so the
    profile's per-token counts of a speculative stack are per full-model forward."""

    def __init__(self, raw, phases) -> None:
        self.raw = raw
        self.phases = phases  # harness.measure.profile.annotate.PhaseClock over `raw`

    def start(self) -> None:
        self.phases.start()

    def draft_done(self, name: str) -> None:
        self.raw.mark(name)

    def mark(self, name: str) -> None:
        self.phases.mark(name)

    def last_mark(self, name: str) -> None:
        self.phases.max_marks = 0  # no further decode range after the last round
        self.phases.mark(name)

    def elapsed_s(self) -> list[float]:
        return self.phases.elapsed_s()


def round_metrics(marks_s: list[float], emitted: list[int]) -> dict[str, list[float]]:
    """Raw samples of one speculative generation.

    tpot_s: one sample per output token after the first (a round's time shared evenly by the
    tokens it emitted), so it sums to the decode time like the greedy loop's; time_per_forward_s:
    one per verify forward (the round: its drafting and its verify); draft_s, verify_s: the two
    parts of each round."""
    starts, drafts_end, verifies_end = marks_s[0:-1:2], marks_s[1::2], marks_s[2::2]
    draft_s = [end - start for start, end in zip(starts, drafts_end, strict=False)]
    verify_s = [end - start for start, end in zip(drafts_end, verifies_end, strict=False)]
    rounds_s = [d + v for d, v in zip(draft_s, verify_s, strict=False)]
    tpot_s = [seconds / count for seconds, count in zip(rounds_s, emitted, strict=False) for _ in range(count)]
    return {"tpot_s": tpot_s, "time_per_forward_s": rounds_s, "draft_s": draft_s, "verify_s": verify_s}
