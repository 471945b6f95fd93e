"""Colour conversion (BT.601 YCbCr, full range, as JPEG/JFIF) and plane resampling. Pure functions.

The encoder converts in float64; the decoder converts with libjpeg's 16-bit fixed-point integer
arithmetic, so decoded pixels are identical on every machine.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_FIXED_ONE = 1 << 16
_CR_TO_R = 91881  # round(1.402 * 2**16)
_CB_TO_B = 116130  # round(1.772 * 2**16)
_CB_TO_G = 22554  # round(0.344136 * 2**16)
_CR_TO_G = 46802  # round(0.714136 * 2**16)


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB -> Y, Cb, Cr planes, each (H, W) float64 in [0, 255]."""
    red, green, blue = (rgb[..., channel].astype(np.float64) for channel in range(3))
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    cb = 128.0 - 0.168735892 * red - 0.331264108 * green + 0.5 * blue
    cr = 128.0 + 0.5 * red - 0.418687589 * green - 0.081312411 * blue
    return luma, cb, cr


def ycbcr_to_rgb(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Y, Cb, Cr planes, each (H, W) uint8 -> (H, W, 3) uint8 RGB, in exact integer arithmetic."""
    y = luma.astype(np.int32)
    cb_centered = cb.astype(np.int32) - 128
    cr_centered = cr.astype(np.int32) - 128
    half = _FIXED_ONE // 2
    red = y + ((_CR_TO_R * cr_centered + half) >> 16)
    green = y + ((-_CB_TO_G * cb_centered - _CR_TO_G * cr_centered + half) >> 16)
    blue = y + ((_CB_TO_B * cb_centered + half) >> 16)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8)


def to_uint8(plane: np.ndarray) -> np.ndarray:
    """Round and clip a float plane to uint8."""
    return np.clip(np.rint(plane), 0, 255).astype(np.uint8)


def downsample(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anti-aliased (Lanczos-3) resize of a (H, W) float plane to (height, width) float32."""
    image = Image.fromarray(plane.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def upsample_bicubic(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a (h, w) uint8 plane to (height, width) uint8.

    Pillow resizes 8-bit planes in fixed-point integer arithmetic: the result is exact everywhere.
    """
    return np.asarray(Image.fromarray(plane, mode="L").resize((width, height), Image.Resampling.BICUBIC))


def reduced_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """Size of a (height, width) plane downsampled by ``factor``: sides rounded up, at least 1."""
    return -(-height // factor), -(-width // factor)
