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


_ROWS_PER_CHUNK = 256  # rows converted at once: bounds temporary memory on large images
_RGB_TO_YCBCR = ((0.299, 0.587, 0.114),
                 (-0.168735892, -0.331264108, 0.5),
                 (0.5, -0.418687589, -0.081312411))


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB -> Y, Cb, Cr planes, each (H, W) float32 in [0, 255]."""
    planes = np.empty((3, *rgb.shape[:2]), np.float32)
    for top in range(0, rgb.shape[0], _ROWS_PER_CHUNK):
        red, green, blue = (rgb[top:top + _ROWS_PER_CHUNK, :, channel].astype(np.float64) for channel in range(3))
        for index, (to_red, to_green, to_blue) in enumerate(_RGB_TO_YCBCR):
            offset = 0.0 if index == 0 else 128.0
            planes[index, top:top + _ROWS_PER_CHUNK] = to_red * red + to_green * green + to_blue * blue + offset
    return planes[0], planes[1], planes[2]


def ycbcr_to_rgb(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Y, Cb, Cr planes, each (H, W) uint8 -> (H, W, 3) uint8 RGB, in exact integer arithmetic."""
    rgb = np.empty((*luma.shape, 3), np.uint8)
    half = _FIXED_ONE // 2
    for top in range(0, luma.shape[0], _ROWS_PER_CHUNK):
        rows = slice(top, top + _ROWS_PER_CHUNK)
        y = luma[rows].astype(np.int32)
        cb_centered = cb[rows].astype(np.int32) - 128
        cr_centered = cr[rows].astype(np.int32) - 128
        rgb[rows, :, 0] = np.clip(y + ((_CR_TO_R * cr_centered + half) >> 16), 0, 255)
        rgb[rows, :, 1] = np.clip(y + ((-_CB_TO_G * cb_centered - _CR_TO_G * cr_centered + half) >> 16), 0, 255)
        rgb[rows, :, 2] = np.clip(y + ((_CB_TO_B * cb_centered + half) >> 16), 0, 255)
    return rgb


def to_uint8(plane: np.ndarray) -> np.ndarray:
    """Round and clip a float plane to uint8."""
    return np.clip(np.rint(plane), 0, 255).astype(np.uint8)


def downsample(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Anti-aliased (Lanczos-3) resize of a (H, W) float plane to (height, width) float32."""
    image = Image.fromarray(np.asarray(plane, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32)


def upsample_bicubic(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a (h, w) uint8 plane to (height, width) uint8.

    Pillow resizes 8-bit planes in fixed-point integer arithmetic: the result is exact everywhere.
    """
    return np.asarray(Image.fromarray(plane, mode="L").resize((width, height), Image.Resampling.BICUBIC))


def reduced_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """Size of a (height, width) plane downsampled by ``factor``: sides rounded up, at least 1."""
    return -(-height // factor), -(-width // factor)
