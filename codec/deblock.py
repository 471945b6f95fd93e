"""Stage 4: the deblocking CNN, a post-filter of the decoded full-size luma. Baseline: identity.

It runs on every decoded image (color, grayscale, partial), after colorization and before the
conversion to RGB. The network sees the luma and how strongly it was coded, read from the file:
the luma section's bits per coded sample, the luma scale and, from format 1.0 on, the file's
deblock level (spec 3.1): the luma's PSNR before stage 4 as the encoder measured it, in quarter
dB, so the network knows how much error there is to remove (two photos coded at the same rate
can differ by 10 dB), or, from nnc 0.15, a level near it that the encoder found to bring the
output closer to the source (``pipeline.DEBLOCK_LEVEL_STEP``); level 0 turns the stage off,
which the encoder writes where the network would not bring the luma closer to the source by
enough to be worth its decode time (``pipeline.DEBLOCK_MIN_GAIN``). Chroma is left as
colorized: its hints are smooth and its error small.
Files of format 0.x have no level: stage 4 runs where the luma has at most DEBLOCK_MAX_BPP
bits per pixel (the gate of release 78c1ca56, the only one of those with a deblocker).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from torch import nn

from .color import to_uint8
from .metrics import psnr
from .runtime import run_network
from .upscale import rate_condition

DEBLOCK_MAX_BPP = 0.05  # files without a deblock level: luma bits per full-size pixel above which stage 4 is off
LEVEL_STEPS_PER_DB = 4  # the deblock level is a PSNR in quarter dB
LEVEL_SCALE_DB = 50.0  # the network's level input is the PSNR over this


def deblock_level(original: np.ndarray, decoded: np.ndarray) -> int:
    """The deblock level (1..255) of the (H, W) uint8 ``decoded`` luma against its (H, W) uint8
    ``original``: their PSNR in quarter dB, rounded (255 for 63.75 dB and more)."""
    decibels = psnr(original, decoded)
    if math.isinf(decibels):
        return 255
    return int(min(max(round(LEVEL_STEPS_PER_DB * decibels), 1), 255))


def deblock_condition(luma_bytes: int, stream_pixels: int, scale: int,
                      level: int | None = None) -> tuple[float, ...]:
    """The network's condition input: ``upscale.rate_condition`` (the luma section's bits per coded
    sample, scaled), log2(scale) / 2 and, for a file with a deblock level (1..255), the PSNR it
    stands for over LEVEL_SCALE_DB. luma_bytes: size of the luma section in bytes; stream_pixels:
    h * w of the coded luma stream; scale: 1, 2 or 4."""
    condition = (rate_condition(luma_bytes, stream_pixels), math.log2(scale) / 2.0)
    if level is None:
        return condition
    return (*condition, level / LEVEL_STEPS_PER_DB / LEVEL_SCALE_DB)


def level_fits(level: int | None, condition_channels: int) -> bool:
    """Whether a file's deblock ``level`` (None: a file of format 0.x, which has none) suits a
    deblocker with ``condition_channels`` condition inputs: 2 take no level, 3 need one; level 0
    (stage 4 off) suits any."""
    if level is None:
        return condition_channels == 2
    return level == 0 or condition_channels == 3


def deblock_applies(luma_bytes: int, height: int, width: int, level: int | None) -> bool:
    """Whether stage 4 filters an image of (height, width) whose luma section has ``luma_bytes``
    bytes: the file's deblock level is not 0, or, for a file without one, the rate is low enough."""
    if level is not None:
        return level > 0
    return 8 * luma_bytes <= DEBLOCK_MAX_BPP * height * width


def apply_deblock(luma: np.ndarray, luma_bytes: int, stream_pixels: int, scale: int,
                  network: Callable[[], nn.Module | None], threads: int | None = None,
                  level: int | None = None) -> np.ndarray:
    """(H, W) uint8 luma -> (H, W) uint8 filtered luma. luma_bytes: the luma section's payload size;
    stream_pixels: h * w of the luma stream; scale: 1, 2 or 4; level: the file's deblock level
    (None for files of format 0.x; it must fit the network, see ``level_fits``). network: gives
    the network, or None for the baseline (identity); called (weights loaded) only when stage 4 applies."""
    if not deblock_applies(luma_bytes, *luma.shape, level):
        return luma
    model = network()
    if model is None:
        return luma
    condition = deblock_condition(luma_bytes, stream_pixels, scale, level)
    planes = luma[None].astype(np.float32) / np.float32(255.0)
    return to_uint8(run_network(model, planes, condition, threads)[0] * np.float32(255.0))
