"""int8 weight-only (torchao Int8WeightOnlyConfig): weights stored in int8, dequantized per matmul.

Runs on the CPU here (slower than float32 there, FACTS.md); CUDA per torchao's docs (never run here).
"""

from harness.levers.quantization import quant_lever

LEVER = quant_lever("int8wo")
