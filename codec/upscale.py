"""Stage 2: upscale the decoded luma stream to full size. Classical baseline: bicubic."""

from __future__ import annotations

import numpy as np

from .color import upsample_bicubic


def apply_upscale(luma_stream: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) uint8 luma stream -> (height, width) uint8 luma; identity when the sizes match."""
    if luma_stream.shape == (height, width):
        return luma_stream
    return upsample_bicubic(luma_stream, height, width)
