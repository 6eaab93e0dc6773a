"""PyTorch's own dynamic int8 quantization of nn.Linear (torch.ao.quantization.quantize_dynamic).

CPU only: its quantized::linear_dynamic kernels (fbgemm / onednn) have no CUDA implementation.
"""

from harness.levers.quantization import quant_lever

LEVER = quant_lever("dynint8", device_types={"cpu"}, dtypes={"float32"})  # float modules only
