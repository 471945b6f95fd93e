"""Stage 2: upscale the decoded luma stream to full size. Baseline: bicubic; learned: ``Upscaler``.

The learned stage corrects the bicubic picture: the bicubic (H, W) luma, edge-padded to a
multiple of the scale, goes through the network of the stream's scale (tiled by the runtime),
and the result is cropped back to (H, W). The network sees how strongly the stream was coded:
the luma section's bits per coded sample, read from the file (spec 5.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from torch import nn

from .color import to_uint8, upsample_bicubic
from .runtime import run_network


def rate_condition(luma_bytes: int, stream_pixels: int) -> float:
    """How strongly the luma stream was coded, as a network input: (log2 of the luma section's bits
    per coded sample + 4) / 6, clipped to [-1, 2]. luma_bytes: the section's payload size in
    bytes; stream_pixels: h * w of the coded stream."""
    bits_per_sample = 8.0 * max(luma_bytes, 1) / max(stream_pixels, 1)
    return min(max((math.log2(bits_per_sample) + 4.0) / 6.0, -1.0), 2.0)


def apply_upscale(luma_stream: np.ndarray, height: int, width: int, scale: int, luma_bytes: int,
                  network: Callable[[], nn.Module | None] | None = None, threads: int | None = None) -> np.ndarray:
    """(h, w) uint8 luma stream at ``scale`` (1, 2 or 4) -> (height, width) uint8 luma; identity at scale 1.

    luma_bytes: the luma section's payload size. network: gives the stage's networks (an
    ``Upscalers``), or None for the bicubic baseline; called only for a downsampled stream.
    threads: CPU threads of the network (None: one per core)."""
    if scale == 1:
        return luma_stream
    bicubic = upsample_bicubic(luma_stream, height, width)
    model = network() if network is not None else None
    if model is None:
        return bicubic
    condition = (rate_condition(luma_bytes, luma_stream.size),)
    output = run_network(model.for_scale(scale), bicubic[None].astype(np.float32) / np.float32(255.0),
                         condition, threads)  # edge-padded to the scale's blocks: the stream's size times scale
    return to_uint8(output[0] * np.float32(255.0))
