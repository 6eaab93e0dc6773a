"""Every batch padded to the workload's longest possible history: fixed shapes, the
precondition for CUDA graphs (and no recompiles under compile); costs the most padding."""

from harness.levers.layout import layout_lever

LEVER = layout_lever(
    "fixed",
    "batches padded to the workload's longest possible history (fixed shapes)",
    expected_tokens=lambda session, count: count.batch * session.fixed_len,
)
