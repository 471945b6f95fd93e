"""``nnc restore``: the deblocking CNN (``jpeg`` weights) on ordinary JPEG files.

The JPEG's quality, estimated from its luma quantisation table, tells the network how strongly
the file was coded. Y, Cb and Cr are filtered together; the result is RGB.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, JpegImagePlugin

from .color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb
from .errors import InputImageError
from .runtime import run_network
from .weights import load_model

RESTORE_MODEL = "deblock_jpeg-v3"  # v2 trained on JPEG qualities 5-95, not 5-50 (weights/README.md)
RESTORE_MAX_QUALITY = 95  # above this JPEG quality the network is not run: on the 28 held-out training photos
                          # it gains at every quality up to 95 on each (+0.68 dB on average at 95, +0.11 at least),
                          # at 98 it costs 9 of them PSNR (deblock_jpeg-v2, trained up to 50: 7 of them at 90)

# ITU-T T.81 Annex K.1: the luminance table libjpeg scales by quality (natural order).
_BASE_LUMA_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.int64)


def _libjpeg_table(quality: int) -> np.ndarray:
    """The Annex K luma table as libjpeg scales it for ``quality`` (1..100), baseline (at most 255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_BASE_LUMA_TABLE * scale + 50) // 100, 1, 255)


_LIBJPEG_TABLES = np.stack([_libjpeg_table(quality) for quality in range(1, 101)])


def jpeg_quality(luma_table: list[int] | np.ndarray) -> int:
    """The libjpeg quality (1..100) whose scaled Annex K luma table is closest (sum of absolute
    differences; the lowest quality on a tie) to ``luma_table`` (64 entries, natural order).

    Exact for libjpeg's (Pillow's) own files; a camera's tables get the quality of the nearest one."""
    distances = np.abs(_LIBJPEG_TABLES - np.asarray(luma_table, dtype=np.int64)[None]).sum(axis=1)
    return int(np.argmin(distances)) + 1


def restore_condition(quality: float) -> tuple[float]:
    """The network's condition input for a JPEG of ``quality`` (1..100)."""
    return (quality / 100.0,)


def restore_planes(rgb: np.ndarray, quality: float, threads: int | None = None) -> list[np.ndarray]:
    """(H, W, 3) uint8 RGB decoded from a JPEG of ``quality`` -> restored Y, Cb, Cr, each (H, W) uint8."""
    planes = np.stack(rgb_to_ycbcr(rgb)) / np.float32(255.0)
    restored = run_network(load_model(RESTORE_MODEL), planes, restore_condition(quality), threads)
    return [to_uint8(plane * np.float32(255.0)) for plane in restored]


def restore(image: Image.Image, threads: int | None = None) -> Image.Image:
    """Remove blocking and ringing from a JPEG opened with Pillow; returns a new RGB (or L) image.

    A JPEG above RESTORE_MAX_QUALITY is returned as decoded (the network would cost it PSNR).
    ``info`` carries the ICC profile and Exif block over, and says the JPEG's estimated quality
    (``nnc_jpeg_quality``) and whether the network ran (``nnc_restored``). InputImageError if
    ``image`` is not a JPEG (Pillow's ``format`` is not "JPEG" or it has no quantisation tables)."""
    tables = getattr(image, "quantization", None)
    if not isinstance(image, JpegImagePlugin.JpegImageFile) or not tables:  # MPO (camera JPEGs) included
        raise InputImageError(f"not a JPEG file ({image.format or 'unknown format'}): restore reads JPEG only")
    quality = jpeg_quality(tables[min(tables)])
    gray = image.mode == "L"
    if quality > RESTORE_MAX_QUALITY:
        result = image.convert("L" if gray else "RGB")
    else:
        luma, cb, cr = restore_planes(np.asarray(image.convert("RGB")), quality, threads)
        result = Image.fromarray(luma, mode="L") if gray else Image.fromarray(ycbcr_to_rgb(luma, cb, cr), mode="RGB")
    result.info = {"nnc_jpeg_quality": quality, "nnc_restored": quality <= RESTORE_MAX_QUALITY}
    for key in ("icc_profile", "exif"):
        if image.info.get(key):
            result.info[key] = image.info[key]
    return result
