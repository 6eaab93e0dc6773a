"""torchao autoquant: per layer, the fastest quantized kernel by benchmarking (GPU-oriented).

torchao 0.18 has no autoquant API, so this lever is dropped at expansion with that reason
(harness.quantize.unavailable); it is kept so that a torchao that has it runs it by name.
"""

from harness.levers.quantization import quant_lever

LEVER = quant_lever("autoquant", device_types={"cuda"})
