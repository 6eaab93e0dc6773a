"""int8 dynamic activation + int8 weight (torchao Int8DynamicActivationInt8WeightConfig).

Runs on the CPU here; on CUDA torchao's int8 matmul (torch._int_mm) path, per its docs and
code (never run by this project so far).
"""

from harness.levers.quantization import quant_lever

LEVER = quant_lever("int8dq")
