"""Recommender baseline: each batch padded to its longest history ([batch, longest, dim])."""

from harness.levers.layout import layout_lever

LEVER = layout_lever(
    "padded",
    "batches padded to their longest history (the baseline)",
    expected_tokens=lambda session, count: count.batch * count.longest,
)
