"""Recommender runner (HSTU): encode a batch of user histories, then score items.

Length semantics of a case (harness.spec.workload.Lengths):
- prompt_len: history length per user; with a distribution, the median of per-user draws
  (each batch row draws its own length, so a batch is ragged as real traffic is);
- gen_len: candidates per user (task `rank`) or k (task `retrieve`);
- Case.items: rows of the item table the candidates are drawn from and retrieval searches.

Stages, timed separately (Output.stages_s): `embedding` (item + position lookup), `encoder`
(the HSTU blocks: the step that compile / CUDA graphs wrap), `score` (rank: dot products with
the candidates) or `topk` (retrieve: dot products with the whole table, then top-k).
The L2-normalised item table (the retrieval index) is built once per session, outside timing.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.families.base import Output, RunnerBase, SessionBase, timings
from harness.levers.plan import Plan
from harness.measure.clock import make_clock
from harness.measure.equivalence import UNIT_ROUNDOFF
from harness.measure.profile.annotate import stage_clock
from harness.spec.workload import DISTRIBUTIONS, Lengths, row_prompt_lens

MAX_GAP_S = 7 * 24 * 3600  # seconds between two events of one user, drawn uniformly up to this
# Scores are cosines of two L2-normalised vectors a, b (|s| <= 1), each element rounded to the
# dtype: every product a_i b_i carries three roundings (a_i, b_i, the product: 3u relative, u the
# unit roundoff), summed over the elements to at most 3u sum|a_i b_i| <= 3u (Cauchy-Schwarz), and
# the score's own rounding adds u |s| <= u. One stack's score is within 4u of its vectors' exact
# cosine, two stacks' within 8u of each other: 2^-5 bfloat16, 2^-8 float16. float32's is nominal
# (1e-4): its roundoff (8u = 5e-7) is far below what a changed summation order in the encoder moves.
SCORE_ATOL = {"float32": 1e-4, **{dtype: 8 * UNIT_ROUNDOFF[dtype] for dtype in ("bfloat16", "float16")}}
STAGE_OF_TASK = {"rank": "score", "retrieve": "topk"}


# -- workload --------------------------------------------------------------------------------------
def history_lengths(lengths: Lengths, batch_size: int, draw: tuple[int, int], seed: int, max_len: int) -> list[int]:
    """Per-user history lengths of one batch; seeded by the iteration's draw, capped at max_len."""
    return [min(n, max_len) for n in row_prompt_lens(lengths, batch_size, draw, seed)]


def fixed_length(lengths: Lengths, max_len: int) -> int:
    """The longest history a workload can draw: the `fixed` layout pads every batch to it."""
    factor = DISTRIBUTIONS[lengths.dist]["max_factor"] if lengths.dist else 1.0
    return min(math.ceil(lengths.prompt_len * factor), max_len)


@dataclass(frozen=True)
class Histories:
    """One layout of a batch: ids, positions and timestamps, padded [B, L] or packed [T]."""

    item_ids: torch.Tensor
    positions: torch.Tensor
    timestamps: torch.Tensor
    lengths: torch.Tensor  # [B]
    length_list: tuple[int, ...]  # the same on the host (jagged splits need ints)

    @property
    def computed_tokens(self) -> int:
        return self.item_ids.numel()

    def to(self, device: str) -> Histories:
        return Histories(
            self.item_ids.to(device), self.positions.to(device), self.timestamps.to(device), self.lengths.to(device),
            self.length_list,
        )


@dataclass(frozen=True)
class Batch:
    layouts: dict  # layout name -> Histories
    candidates: torch.Tensor  # [B, C] item ids (rank); [B, 0] for retrieve
    k: int


def pad_histories(ids: list[torch.Tensor], stamps: list[torch.Tensor], width: int) -> Histories:
    """Left-aligned histories padded with item 0 up to `width`."""
    lengths = [len(t) for t in ids]
    padded_ids = torch.zeros(len(ids), width, dtype=torch.long)
    padded_stamps = torch.zeros(len(ids), width, dtype=torch.long)
    for row, (item, stamp) in enumerate(zip(ids, stamps, strict=False)):
        padded_ids[row, : len(item)] = item
        padded_stamps[row, : len(stamp)] = stamp
    positions = torch.arange(width).expand(len(ids), width).contiguous()
    return Histories(padded_ids, positions, padded_stamps, torch.tensor(lengths), tuple(lengths))


def pack_histories(ids: list[torch.Tensor], stamps: list[torch.Tensor]) -> Histories:
    lengths = [len(t) for t in ids]
    positions = torch.cat([torch.arange(n) for n in lengths])
    return Histories(torch.cat(ids), positions, torch.cat(stamps), torch.tensor(lengths), tuple(lengths))


def make_batch(lengths: list[int], fixed_len: int, items: int, candidates: int, k: int, seed: int) -> Batch:
    """Seeded histories (ids in 1..items-1, increasing timestamps) in every layout, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    ids = [torch.randint(1, items, (n,), generator=generator) for n in lengths]
    stamps = [torch.randint(1, MAX_GAP_S, (n,), generator=generator).cumsum(0) for n in lengths]
    layouts = {
        "padded": pad_histories(ids, stamps, max(lengths)),
        "fixed": pad_histories(ids, stamps, fixed_len),
        "jagged": pack_histories(ids, stamps),
    }
    cands = torch.randint(1, items, (len(lengths), candidates), generator=generator)
    return Batch(layouts, cands, k)


def to_device(batch: Batch, device: str) -> Batch:
    return Batch({name: h.to(device) for name, h in batch.layouts.items()}, batch.candidates.to(device), batch.k)


# -- outputs and their comparison ------------------------------------------------------------------
@dataclass(frozen=True)
class Scored:
    ids: torch.Tensor  # [B, n] item ids: the candidates (rank) or the top-k (retrieve)
    scores: torch.Tensor  # [B, n] float32 on the CPU


@dataclass(frozen=True)
class ScoreMismatch:
    row: int
    rank: int
    expected: tuple[int, float]
    got: tuple[int, float]
    atol: float

    def describe(self) -> str:
        return (
            f"scores differ from the baseline stack at batch row {self.row}, position {self.rank}: expected item "
            f"{self.expected[0]} ({self.expected[1]:.6g}), got item {self.got[0]} ({self.got[1]:.6g}); "
            f"tolerance {self.atol:g}"
        )


def first_score_mismatch(expected: Scored, got: Scored, atol: float) -> ScoreMismatch | None:
    """Scores must agree within atol place by place; ids must be identical, except where a near-tie
    swapped places under changed numerics: an item in another place must have got a score within
    atol of its own in the baseline (an item new to a top-k: at most atol above the baseline's last)."""
    if expected.ids.shape != got.ids.shape:
        return ScoreMismatch(0, 0, (-1, float("nan")), (-1, float("nan")), atol)
    score_off = (expected.scores - got.scores).abs() > atol
    same_item = got.ids.unsqueeze(-1) == expected.ids.unsqueeze(-2)  # [B, n, n]: got's place -> baseline's place
    known = same_item.any(-1)
    own = torch.where(known, (same_item * expected.scores.unsqueeze(-2)).sum(-1), expected.scores[:, -1:])
    item_off = torch.where(known, (got.scores - own).abs() > atol, got.scores - own > atol)
    bad = (score_off | ((expected.ids != got.ids) & item_off)).nonzero()
    if not len(bad):
        return None
    row, rank = bad[0].tolist()
    pick = lambda s: (int(s.ids[row, rank]), float(s.scores[row, rank]))  # noqa: E731
    return ScoreMismatch(row, rank, pick(expected), pick(got), atol)


@dataclass(frozen=True)
class TokenCount:
    """What one run handed the encoder: the layout levers' evidence."""

    batch: int
    longest: int
    real: int
    computed: int


# -- session and runner ----------------------------------------------------------------------------
def attend_for(plan: Plan):
    """The attention function of the plan (None: HSTU's own plain-torch attention)."""
    if plan.pointwise_attention == "flex":
        from harness.families.hstu.flex import FlexAttend

        return FlexAttend()
    return None


class RecommenderSession(SessionBase):
    """One HSTU model under one plan: a layout, an attention path and the wrapped encoder step.
    No KV cache (SessionBase.cache stays None): the CUDA-graph wrapper finds nothing to rewind."""

    def __init__(self, model, plan: Plan, items: int, fixed_len: int) -> None:
        super().__init__(model, plan)
        self.layout = plan.layout
        self.fixed_len = fixed_len
        self.attend = attend_for(plan)
        with torch.no_grad():
            self.table = F.normalize(model.item_embedding.weight[:items], dim=-1)
        self.encode_step = self.ready(self._encode_jagged if self.layout == "jagged" else self._encode_padded)
        self.token_counts: list[TokenCount] = []

    def _encode_padded(self, x, timestamps, lengths):
        if self.attend is None:
            return self.model.encode_padded(x, timestamps, lengths)
        return self.model.encode_padded(x, timestamps, lengths, attend=self.attend)

    def _encode_jagged(self, x, timestamps, lengths):
        return self.model.encode_jagged(x, timestamps, lengths)

    def encoder_args(self, histories: Histories) -> tuple:
        lengths = histories.length_list if self.layout == "jagged" else histories.lengths
        return histories.timestamps, lengths


def score_candidates(session: RecommenderSession, users: torch.Tensor, batch: Batch) -> Scored:
    scores = (session.table[batch.candidates] * users.unsqueeze(1)).sum(-1)
    return Scored(batch.candidates, scores)


def retrieve_top_k(session: RecommenderSession, users: torch.Tensor, batch: Batch) -> Scored:
    scores, ids = (users @ session.table.T).topk(batch.k, dim=-1)
    return Scored(ids, scores)


SCORERS = {"rank": score_candidates, "retrieve": retrieve_top_k}


class RecommenderRunner(RunnerBase):
    """HSTU ranking and retrieval over ragged batches of user histories."""

    profiles = True  # run(..., annotate=True) marks each stage for the profiled iteration

    def __init__(self, case, model, device: str, seed: int) -> None:
        super().__init__(case, model, device, seed)
        self.stages = ("embedding", "encoder", STAGE_OF_TASK[case.task])  # the run's marks in order, a stage each
        self.items = case.items or model.config.num_items
        if self.items > model.config.num_items:
            raise ValueError(f"workload asks for {self.items} items, the model's table has {model.config.num_items}")
        self.fixed_len = fixed_length(case.lengths, model.config.max_seq_len)
        self.atol = SCORE_ATOL[case.dtype]

    def session(self, plan: Plan) -> RecommenderSession:
        return RecommenderSession(self.model, plan, self.items, self.fixed_len)

    def inputs(self, draw: tuple[int, int]) -> Batch:
        case = self.case
        lengths = history_lengths(case.lengths, case.batch_size, draw, self.seed, self.model.config.max_seq_len)
        candidates = draw[1] if case.task == "rank" else 0
        k = min(draw[1], self.items)
        batch_seed = zlib.crc32(f"{self.seed}-{case.lengths.token}-{draw}".encode())  # same in every process
        return to_device(make_batch(lengths, self.fixed_len, self.items, candidates, k, batch_seed), self.device)

    @torch.no_grad()
    def run(self, session: RecommenderSession, batch: Batch, annotate: bool = False) -> Output:
        """One batch. `annotate` (the profiled iteration only) marks each stage for the profiler;
        timed iterations never pay for it."""
        histories = batch.layouts[session.layout]
        embedding, encoder, scoring = self.stages
        stages_of_marks = {name: name for name in self.stages}
        # The encoder step (wrapped by compile, CUDA graphs) runs right after the embedding.
        with stage_clock(make_clock(self.device, len(self.stages)), session, stages_of_marks, embedding, annotate) as clock:
            clock.start()
            x = self.model.embed(histories.item_ids, histories.positions)
            clock.mark(embedding)
            users = session.encode_step(x, *session.encoder_args(histories))
            clock.mark(encoder)
            scored = SCORERS[self.case.task](session, users, batch)
            clock.mark(scoring)
            marks = clock.marks()
        metrics, stages = timings(marks, stages=stages_of_marks)
        lengths = histories.length_list
        session.token_counts.append(TokenCount(len(lengths), max(lengths), sum(lengths), histories.computed_tokens))
        metrics.update(real_tokens=sum(lengths), padded_tokens=len(lengths) * max(lengths))  # the record's padding_frac
        value = Scored(scored.ids.cpu(), scored.scores.float().cpu())
        return Output(value=value, metrics=metrics, stages_s=stages)

    def compare(self, expected: Scored, got: Scored) -> ScoreMismatch | None:
        return first_score_mismatch(expected, got, self.atol)
