"""Input images to pixel arrays: any mode Pillow reads, EXIF orientation applied, alpha dropped."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageOps

from .errors import InputImageError

METADATA_ITEM_CAP = 64 * 1024  # bytes: a larger ICC profile or Exif block is dropped, with a warning
_ORIENTATION = 0x0112
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


def open_image(path: str) -> Image.Image:
    """Open an image file with Pillow (HEIC/HEIF too), decompression-bomb guard included."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    try:
        image = Image.open(path)
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputImageError(f"cannot read image {path}: {str(error).splitlines()[0]}") from None
    return image


def image_to_pixels(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or (H, W) uint8 when the image is grayscale (also RGB with R = G = B).

    EXIF orientation is applied; 16-bit samples are scaled to 8 bits; alpha is dropped with a warning.
    """
    image = ImageOps.exif_transpose(image)
    if "A" in image.getbands() or "transparency" in image.info:
        warnings.warn("nnc stores no alpha channel: transparency is dropped", stacklevel=3)
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if samples.max() > 255 else 255.0
        return np.clip(np.rint(samples * (255.0 / peak)), 0, 255).astype(np.uint8)
    if image.mode in _GRAY_MODES:
        return np.asarray(image.convert("L"))
    pixels = np.asarray(image.convert("RGB"))
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
        return np.ascontiguousarray(pixels[..., 0])
    return pixels


def image_metadata(image: Image.Image) -> tuple[bytes, bytes]:
    """(icc_profile, exif) of an image, empty where absent or over METADATA_ITEM_CAP bytes.

    The Exif orientation is reset to 1, since ``image_to_pixels`` applies it to the pixels."""
    icc_profile = image.info.get("icc_profile") or b""
    exif = image.getexif()
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    exif_bytes = exif.tobytes() if len(exif) else b""
    kept = []
    for name, item in (("ICC profile", icc_profile), ("Exif block", exif_bytes)):
        if len(item) > METADATA_ITEM_CAP:
            warnings.warn(f"{name} of {len(item)} bytes is over {METADATA_ITEM_CAP} bytes: not kept", stacklevel=3)
            item = b""
        kept.append(item)
    return kept[0], kept[1]
