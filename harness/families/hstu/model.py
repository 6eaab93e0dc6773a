"""HSTU (generative recommendation), written here in plain torch from its published structure.

Per block (docs/facts.md): LayerNorm -> one fused linear -> SiLU -> split into u, v, q, k; pointwise
attention SiLU(q·kᵀ + relative position/time bias) / n under a causal mask (no softmax);
output x + W(u ⊙ LayerNorm(attn · v)). As in the reference code, n is the model's maximum
sequence length (a constant), so a padded and a jagged batch give the same answer.

Choices of this harness, not the paper's (where docs/facts.md is silent they are parameters):
- input: item embedding × sqrt(dim) + a learned position embedding (the reference's input
  preprocessor); output: the last event's embedding, L2-normalised.
- relative bias per block: a position table indexed by j - i (2N - 1 entries) plus a time
  table indexed by the log-bucket of t_i - t_j (`num_time_buckets` + 1 entries).
- the item table size (`num_items`, row 0 = padding) and the ml-1m embedding width (2 × 25).

Layouts: `padded` runs the blocks over [batch, length, dim]; `jagged` packs the histories into
[tokens, dim] with offsets, so linear layers see only real events and attention is computed
per history (its cost is the sum of squared lengths, not batch × longest²).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from harness.families.models import FamilyModels

LOG_BUCKET_DIVISOR = 0.301  # log10(2) in natural-log units, as in the reference's bucketization
WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
INIT_STD = 0.02


@dataclass(frozen=True)
class HSTUConfig:
    num_items: int  # rows of the item table, row 0 is padding
    embedding_dim: int
    num_blocks: int
    num_heads: int
    attention_dim: int  # per head, q and k
    linear_dim: int  # per head, u and v
    max_seq_len: int  # also the attention's normaliser n
    num_time_buckets: int = 128
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if min(self.num_items, self.embedding_dim, self.num_blocks, self.num_heads, self.max_seq_len) < 1:
            raise ValueError(f"HSTU config sizes must be positive: {self}")

    def to_json(self) -> str:
        return json.dumps({"model_type": "hstu", **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HSTUConfig:
        data = json.loads(text)
        data.pop("model_type", None)
        return cls(**data)


PRESETS = {
    "tiny": dict(
        num_items=100_000, embedding_dim=64, num_blocks=2, num_heads=2, attention_dim=32,
        linear_dim=32, max_seq_len=256,
    ),
    "small": dict(
        num_items=1_000_000, embedding_dim=128, num_blocks=4, num_heads=4, attention_dim=32,
        linear_dim=32, max_seq_len=512,
    ),
    "paper-ml1m": dict(  # ml-1m "large": 8 blocks, 2 heads, 25 dims per head, max length 200
        num_items=4_000, embedding_dim=50, num_blocks=8, num_heads=2, attention_dim=25,
        linear_dim=25, max_seq_len=200,
    ),
    "paper": dict(  # ml-3b "large": 16 blocks, 8 heads, 32 dims per head, embedding 256, max length 500
        num_items=1_000_000, embedding_dim=256, num_blocks=16, num_heads=8, attention_dim=32,
        linear_dim=32, max_seq_len=500,
    ),
    "paper-long": dict(  # the ml-3b "large" blocks over histories of thousands of events
        num_items=1_000_000, embedding_dim=256, num_blocks=16, num_heads=8, attention_dim=32,
        linear_dim=32, max_seq_len=4096,
    ),
}


# -- small functions (tested one by one) --------------------------------------------------------
def time_buckets(timestamps: torch.Tensor, num_buckets: int) -> torch.Tensor:
    """[..., n] timestamps -> [..., n, n] log-bucket of |t_i - t_j| (query i, key j)."""
    delta = (timestamps.unsqueeze(-1) - timestamps.unsqueeze(-2)).abs().clamp(min=1)
    return (torch.log(delta.float()) / LOG_BUCKET_DIVISOR).long().clamp(0, num_buckets)


def relative_positions(n: int, max_seq_len: int, device) -> torch.Tensor:
    """[n, n] index into the position table: max_seq_len - 1 + (j - i)."""
    index = torch.arange(n, device=device)
    return max_seq_len - 1 + index.unsqueeze(0) - index.unsqueeze(1)


def causal_mask(n: int, device) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def pointwise_attention(q, k, v, bias, max_seq_len: int) -> torch.Tensor:
    """HSTU attention. q, k: [B, n, H, dqk]; v: [B, n, H, dv]; bias: [B, n, n] -> [B, n, H, dv].

    SiLU(q·kᵀ + bias) / max_seq_len, causal, no softmax.
    """
    scores = torch.einsum("bihd,bjhd->bhij", q, k) + bias.unsqueeze(1)
    weights = F.silu(scores) / max_seq_len
    weights = weights.masked_fill(~causal_mask(q.shape[1], q.device), 0.0)
    return torch.einsum("bhij,bjhd->bihd", weights, v)


class HSTUBlock(nn.Module):
    def __init__(self, config: HSTUConfig) -> None:
        super().__init__()
        self.config = config
        heads = config.num_heads
        self.split_sizes = [heads * config.linear_dim] * 2 + [heads * config.attention_dim] * 2  # u, v, q, k
        self.uvqk = nn.Parameter(torch.empty(config.embedding_dim, sum(self.split_sizes)))
        self.output = nn.Linear(heads * config.linear_dim, config.embedding_dim)
        self.position_bias = nn.Parameter(torch.empty(2 * config.max_seq_len - 1))
        self.time_bias = nn.Parameter(torch.empty(config.num_time_buckets + 1))

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """LayerNorm -> fused linear -> SiLU -> (u, v, q, k), on any [..., dim] layout."""
        normed = F.layer_norm(x, (self.config.embedding_dim,), eps=self.config.layer_norm_eps)
        return F.silu(normed @ self.uvqk).split(self.split_sizes, dim=-1)

    def bias(self, positions: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        return self.position_bias[positions] + self.time_bias[buckets]

    def finish(self, x: torch.Tensor, u: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(attended, (attended.shape[-1],), eps=self.config.layer_norm_eps)
        return x + self.output(u * normed)

    def heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.config.num_heads, -1))


Attend = Callable[..., torch.Tensor]  # (block, q, k, v, timestamps, positions, buckets) -> [B, n, H, dv]


def torch_attend(block: HSTUBlock, q, k, v, timestamps, positions, buckets) -> torch.Tensor:
    return pointwise_attention(q, k, v, block.bias(positions, buckets), block.config.max_seq_len)


def _attend_one(block: HSTUBlock, q, k, v, positions_and_buckets) -> torch.Tensor:
    """One history of a jagged batch: [n, H*d] slices -> [n, H, dv]."""
    positions, buckets = positions_and_buckets
    one = lambda t: block.heads(t).unsqueeze(0)  # noqa: E731
    return pointwise_attention(one(q), one(k), one(v), block.bias(positions, buckets), block.config.max_seq_len)[0]


class HSTU(nn.Module):
    def __init__(self, config: HSTUConfig) -> None:
        super().__init__()
        self.config = config
        self.item_embedding = nn.Embedding(config.num_items, config.embedding_dim, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_seq_len, config.embedding_dim)
        self.blocks = nn.ModuleList(HSTUBlock(config) for _ in range(config.num_blocks))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for parameter in self.parameters():
            if parameter.device.type != "meta":
                nn.init.normal_(parameter, std=INIT_STD)
        if self.item_embedding.weight.device.type != "meta":
            nn.init.normal_(self.item_embedding.weight, std=1.0)  # items should be told apart by direction
            self.item_embedding.weight[0].zero_()

    def embed(self, item_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Any layout: ids and positions of the same shape -> [..., dim]."""
        scale = math.sqrt(self.config.embedding_dim)
        return self.item_embedding(item_ids) * scale + self.position_embedding(positions)

    def hstu_blocks(self) -> Iterable[HSTUBlock]:
        """The blocks, typed (nn.ModuleList yields plain Modules to a type checker)."""
        return cast("Iterable[HSTUBlock]", self.blocks)

    def encode_padded(self, x, timestamps, lengths, attend: Attend = torch_attend) -> torch.Tensor:
        """x: [B, L, dim], histories left-aligned; lengths: [B] -> user embeddings [B, dim]."""
        n = x.shape[1]
        positions = relative_positions(n, self.config.max_seq_len, x.device)
        buckets = time_buckets(timestamps, self.config.num_time_buckets)
        for block in self.hstu_blocks():
            u, v, q, k = block.project(x)
            attended = attend(block, block.heads(q), block.heads(k), block.heads(v), timestamps, positions, buckets)
            x = block.finish(x, u, attended.flatten(-2))
        last = x[torch.arange(x.shape[0], device=x.device), lengths - 1]
        return F.normalize(last, dim=-1)

    def encode_jagged(self, x, timestamps, lengths: Sequence[int]) -> torch.Tensor:
        """x: [T, dim] packed histories of `lengths` (host ints) -> user embeddings [B, dim]."""
        # Host ints make the per-history splits cheap in eager mode; under compile they become
        # guards (which user is longest, ...) and recompile per batch, so no jagged+compile stack.
        all_positions = relative_positions(max(lengths), self.config.max_seq_len, x.device)
        per_user = [
            (all_positions[:n, :n], time_buckets(t, self.config.num_time_buckets).unsqueeze(0))
            for n, t in zip(lengths, timestamps.split(lengths), strict=True)
        ]
        for block in self.hstu_blocks():
            u, v, q, k = block.project(x)
            pieces = zip(q.split(lengths), k.split(lengths), v.split(lengths), per_user, strict=True)
            attended = [_attend_one(block, *piece) for piece in pieces]
            x = block.finish(x, u, torch.cat(attended).flatten(-2))
        # each user's last position, as views of the split: an index tensor made from `lengths` here
        # would be a host-to-device copy (a stream sync on CUDA) inside the timed encoder
        last = torch.stack([user[-1] for user in x.split(lengths)])
        return F.normalize(last, dim=-1)


# -- builders (harness.families.models.FamilyModels) -------------------------------------------------------
def config(preset: str) -> HSTUConfig:
    return HSTUConfig(**PRESETS[preset])


def random(model_config: HSTUConfig) -> HSTU:
    return HSTU(model_config)


def save(model: HSTU, folder) -> None:
    """A local checkpoint: the torch state dict plus the JSON config."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(model.config.to_json())
    torch.save(model.state_dict(), folder / WEIGHTS_FILE)


def load(folder, dtype) -> HSTU:
    folder = Path(folder)
    model_config = HSTUConfig.from_json((folder / CONFIG_FILE).read_text())
    with torch.device("meta"):
        model = HSTU(model_config)
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state, assign=True)
    return model.to(dtype)


MODELS = FamilyModels(presets=PRESETS, config=config, random=random, load=load)
