"""int4 weight-only (torchao Int4WeightOnlyConfig, tinygemm `tile_packed_to_4d` layout).

CUDA and bfloat16 only: that layout asserts both, and a GPU of compute capability 8.0 or more
(torchao 0.18 code; torch's `_weight_int4pack_mm`). The default `plain` layout needs the mslk
kernel package, `plain_int32` is for XPU/NPU, and no int4 layout runs on the CPU (all three
tried here). Never run by this project so far (no GPU).
"""

from harness.levers.quantization import quant_lever

LEVER = quant_lever("int4wo", device_types={"cuda"}, dtypes={"bfloat16"})
