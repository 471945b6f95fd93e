"""Stage 4: the deblocking CNN, a post-filter of the decoded full-size luma. Baseline: identity.

It runs on every decoded image (color, grayscale, partial), after colorization and before the
conversion to RGB. The network sees the luma and how strongly it was coded: the luma section's
bits per coded sample and the luma scale, both read from the file (spec 5.2), so one weight set
serves every quality. Chroma is left as colorized: its hints are smooth and its error small.
The filter runs at the low rates nnc is made for: above DEBLOCK_MAX_BPP luma bits per pixel
HEVC's own in-loop filters leave too little for it, and stage 4 is the identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from torch import nn

from .color import to_uint8
from .runtime import run_network
from .upscale import rate_condition

DEBLOCK_MAX_BPP = 0.05  # luma section bits per full-size pixel above which stage 4 is the identity


def deblock_condition(luma_bytes: int, stream_pixels: int, scale: int) -> tuple[float, float]:
    """The network's condition input: ``upscale.rate_condition`` (the luma section's bits per coded
    sample, scaled) and log2(scale) / 2. luma_bytes: size of the luma section in bytes;
    stream_pixels: h * w of the coded luma stream; scale: 1, 2 or 4."""
    return rate_condition(luma_bytes, stream_pixels), math.log2(scale) / 2.0


def deblock_applies(luma_bytes: int, height: int, width: int) -> bool:
    """Whether stage 4 filters an image of (height, width) whose luma section has ``luma_bytes`` bytes."""
    return 8 * luma_bytes <= DEBLOCK_MAX_BPP * height * width


def apply_deblock(luma: np.ndarray, luma_bytes: int, stream_pixels: int, scale: int,
                  network: Callable[[], nn.Module | None], threads: int | None = None) -> np.ndarray:
    """(H, W) uint8 luma -> (H, W) uint8 filtered luma. luma_bytes: the luma section's payload size;
    stream_pixels: h * w of the luma stream; scale: 1, 2 or 4. network: gives the network, or None
    for the baseline (identity); called (weights loaded) only when the rate is at most DEBLOCK_MAX_BPP."""
    if not deblock_applies(luma_bytes, *luma.shape):
        return luma
    model = network()
    if model is None:
        return luma
    condition = deblock_condition(luma_bytes, stream_pixels, scale)
    planes = luma[None].astype(np.float32) / np.float32(255.0)
    return to_uint8(run_network(model, planes, condition, threads)[0] * np.float32(255.0))
