"""Where the time goes: one profiled iteration per case, outside the timed samples.

Pure parts (tested without a profiler): `categories` (operator/kernel names -> categories),
`timeline` (busy, idle and per-category time over phase windows), `sol` (bytes and FLOPs of a
decoder config, and the speed-of-light hook every family's figures go through), `trace`
(Chrome/Perfetto trace events -> a Trace). Torch-facing parts:
`peaks` (this device's copy bandwidth and matmul throughput) and `capture` (torch.profiler).
"""
