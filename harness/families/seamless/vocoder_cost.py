"""What SeamlessM4T v2's unit vocoder (a code HiFi-GAN) must compute and move, from its config and
the lengths it ran over: the speed of light of the `vocoder` stage (harness/families/seamless/sol.py).

The vocoder is a stack of 1-d convolutions, so it is counted as one: each convolution (and
transposed convolution) of the duration predictor and the HiFi-GAN, counted per batch row:
- FLOPs: 2 per multiply-add, cin x cout x kernel per output sample (a transposed convolution:
  per input sample); dilation changes no count. Leaky ReLU, tanh, the residual adds and the
  average over the resblocks are pointwise and ignored, as norms are in sol.py.
- bytes: every weight once (batch rows share them), the embedding rows it looks up (each unit's,
  one speaker and one language row), and each convolution's input read once and its output
  written once; the pointwise work rides on those reads and writes (a fused epilogue) and moves
  nothing more. Fusing convolutions into one another is not assumed: the waveform-length tensors
  are far larger than any on-chip memory.
- lengths: `units` positions into the duration predictor, `frames` after its duration expansion
  (the HiFi-GAN's input), each upsampler multiplying them by its rate; the run records the
  waveform's samples, and frames = samples ÷ the product of the rates (exact where kernel - rate
  is even, as in every preset: then a transposed convolution's output is input x rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LINEAR_KERNEL = 1  # the duration predictor's projection: a linear layer is a kernel-1 convolution
EDGE_KERNEL = 7  # conv_pre and conv_post (transformers' SeamlessM4Tv2HifiGan)


@dataclass(frozen=True)
class Conv:
    """One 1-d convolution over one batch row: channels, kernel and the lengths it maps."""

    cin: int
    cout: int
    kernel: int
    length_in: int
    length_out: int
    transposed: bool = False

    @property
    def flops(self) -> int:
        positions = self.length_in if self.transposed else self.length_out
        return 2 * self.cin * self.cout * self.kernel * positions

    @property
    def weights(self) -> int:
        return self.cin * self.cout * self.kernel + self.cout  # and its bias

    @property
    def activations(self) -> int:
        return self.cin * self.length_in + self.cout * self.length_out


def transposed_length(length: int, kernel: int, rate: int) -> int:
    """A transposed convolution's output length with transformers' padding (kernel - rate) // 2."""
    return (length - 1) * rate - 2 * ((kernel - rate) // 2) + kernel


def duration_convs(config, units: int) -> list[Conv]:
    """The duration predictor over the unit embeddings: two kernel convolutions and the projection."""
    embed, kernel = config.unit_embed_dim, config.variance_predictor_kernel_size
    return [Conv(embed, embed, kernel, units, units), Conv(embed, embed, kernel, units, units),
            Conv(embed, 1, LINEAR_KERNEL, units, units)]


def hifigan_convs(config, frames: int) -> list[Conv]:
    """conv_pre, then per upsampler its transposed convolution and every resblock's convolutions
    (two per dilation), then conv_post."""
    channels = config.upsample_initial_channel
    inputs = config.unit_embed_dim + config.lang_embed_dim + config.spkr_embed_dim
    convs = [Conv(inputs, channels, EDGE_KERNEL, frames, frames)]
    length = frames
    for rate, kernel in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
        longer = transposed_length(length, kernel, rate)
        convs.append(Conv(channels, channels // 2, kernel, length, longer, transposed=True))
        channels, length = channels // 2, longer
        for res_kernel, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True):
            convs += [Conv(channels, channels, res_kernel, length, length) for _ in range(2 * len(dilations))]
    return [*convs, Conv(channels, 1, EDGE_KERNEL, length, length)]


def vocoder_frames(config, waveform_samples: int) -> int:
    """The HiFi-GAN's input frames of a waveform of this many samples."""
    return waveform_samples // math.prod(config.upsample_rates)


def vocoder_flops(config, rows: int, units: int, frames: int) -> float:
    """FLOPs of one vocoder call over `rows` rows of `units` units expanded to `frames` frames."""
    return rows * sum(conv.flops for conv in duration_convs(config, units) + hifigan_convs(config, frames))


def vocoder_bytes(config, dtype_bytes: int, rows: int, units: int, frames: int) -> float:
    """Bytes one vocoder call must move: weights once, looked-up embedding rows, each convolution's
    input and output (its two layer norms' weights too)."""
    convs = duration_convs(config, units) + hifigan_convs(config, frames)
    norms = 2 * 2 * config.unit_embed_dim  # the duration predictor's two layer norms, weight and bias
    lookups = rows * (units * config.unit_embed_dim + config.spkr_embed_dim + config.lang_embed_dim)
    activations = rows * sum(conv.activations for conv in convs)
    return dtype_bytes * (sum(conv.weights for conv in convs) + norms + lookups + activations)
