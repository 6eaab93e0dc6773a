"""Jagged batches: histories packed into [tokens, dim] with offsets, attention per history.

Padding wastes work in proportion to length skew; packed, the linear layers see only real
events and attention costs the sum of squared lengths instead of batch x longest squared."""

from harness.levers.layout import layout_lever

LEVER = layout_lever(
    "jagged",
    "histories packed into one [tokens, dim] tensor with offsets",
    expected_tokens=lambda session, count: count.real,
)
