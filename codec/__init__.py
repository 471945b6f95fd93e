"""nnc: a learned image codec for slow links. Public API: encode(), decode(), info(), register_nnc_opener()."""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import format
from .errors import FormatError, InputImageError, LimitError, ModelMismatchError, NncError
from .image_io import image_metadata, image_to_pixels, open_image
from .pillow_plugin import register_nnc_opener
from .pipeline import (
    LEARNED_STAGES,
    QUALITY_RANGE,
    STAGES,
    EncodeReport,
    ImageEncoder,
    check_baseline,
    decode_file_bytes,
)
from .weights import model_version

__version__ = "0.1.0"
DEFAULT_QUALITY = 30

__all__ = [
    "encode", "encode_with_report", "decode", "info", "compare", "open_image", "register_nnc_opener", "__version__",
    "DEFAULT_QUALITY", "STAGES", "LEARNED_STAGES",
    "NncError", "FormatError", "LimitError", "ModelMismatchError", "InputImageError",
]


def encode_with_report(image: Image.Image, quality: int | None = None, target_size: int | None = None,
                       bpp: float | None = None, max_pixels: int = format.DEFAULT_MAX_PIXELS,
                       baseline: tuple[str, ...] = (), strip: bool = False) -> tuple[bytes, EncodeReport]:
    """Encode a Pillow image; returns the .nnc bytes and what the encoder chose.

    Give at most one of: ``quality`` (1..100, default 30; higher is larger), ``target_size``
    (bytes: the best quality whose file fits) or ``bpp`` (bits per pixel: a target size of
    bpp * W * H / 8 bytes). Raises NncError if even quality 1 does not fit the target.
    ``baseline`` names stages (see STAGES) to run as their classical baseline. The ICC profile
    and Exif block are kept (each up to 64 KiB) unless ``strip``.
    """
    check_baseline(baseline)
    if sum(option is not None for option in (quality, target_size, bpp)) > 1:
        raise ValueError("give only one of quality, target_size and bpp")
    pixels = image_to_pixels(image)
    height, width = pixels.shape[:2]
    if width * height > max_pixels:
        raise LimitError(f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
    encoder = ImageEncoder(pixels, *((b"", b"") if strip else image_metadata(image)))
    if bpp is not None:
        target_size = int(bpp * width * height / 8)
    if target_size is None:
        return encoder.encode(DEFAULT_QUALITY if quality is None else quality)
    return _largest_fitting(encoder, target_size)


def _largest_fitting(encoder: ImageEncoder, target_size: int) -> tuple[bytes, EncodeReport]:
    """Bisect quality for the largest file of at most ``target_size`` bytes."""
    low, high = QUALITY_RANGE
    best = encoder.encode(low)
    if len(best[0]) > target_size:
        raise NncError(f"even the lowest quality needs {len(best[0])} bytes, over the target of {target_size}")
    while low < high:
        middle = (low + high + 1) // 2
        attempt = encoder.encode(middle)
        if len(attempt[0]) <= target_size:
            low, best = middle, attempt
        else:
            high = middle - 1
    return best


def encode(image: Image.Image, quality: int | None = None, target_size: int | None = None,
           bpp: float | None = None, baseline: tuple[str, ...] = (), strip: bool = False) -> bytes:
    """Encode a Pillow image to .nnc bytes (see ``encode_with_report`` for the options)."""
    return encode_with_report(image, quality, target_size, bpp, baseline=baseline, strip=strip)[0]


def decode(data: bytes, max_pixels: int = format.DEFAULT_MAX_PIXELS, baseline: tuple[str, ...] = (),
           partial: bool = False) -> Image.Image:
    """Decode .nnc bytes to a Pillow image: mode "RGB", or "L" for a grayscale file.

    The kept ICC profile and Exif block are in ``image.info`` ("icc_profile", "exif"). With
    ``partial``, a file cut short after its luma section decodes to its grayscale image, with
    ``image.info["nnc_partial"]`` True. ``baseline`` names stages to run as their classical baseline.
    """
    check_baseline(baseline)
    decoded = decode_file_bytes(data, max_pixels, partial)
    image = Image.fromarray(decoded.pixels, mode="L" if decoded.pixels.ndim == 2 else "RGB")
    if decoded.icc_profile:
        image.info["icc_profile"] = decoded.icc_profile
    if decoded.exif:
        image.info["exif"] = decoded.exif
    if decoded.partial:
        image.info["nnc_partial"] = True
    return image


def info(data: bytes, max_pixels: int = format.DEFAULT_MAX_PIXELS) -> dict:
    """Header fields and section sizes of .nnc bytes, without decoding pixels."""
    container = format.parse_container(data, max_pixels)
    return {
        "format_version": "{}.{}".format(*container.format_version),
        "model_version": container.model_version.hex(),
        "installed_model_version": model_version().hex(),
        "width": container.width,
        "height": container.height,
        "luma_scale": container.luma_scale,
        "luma_codec": container.luma_codec,
        "hint_layout": container.hint_layout,
        "bytes": len(data),
        "bpp": 8 * len(data) / (container.width * container.height),
        "sections": dict(container.section_sizes),
    }


def compare(source: Image.Image, data: bytes) -> dict:
    """bytes, bpp, psnr (over all samples), psnr_y and ms_ssim (nan under 161 px) of .nnc bytes
    against their source image. NncError if the sizes differ."""
    from .color import rgb_to_ycbcr
    from .metrics import ms_ssim, psnr

    reference, decoded = image_to_pixels(source), decode_file_bytes(data).pixels
    if reference.shape[:2] != decoded.shape[:2]:
        raise NncError(f"the source is {reference.shape[1]}x{reference.shape[0]}, "
                       f"the .nnc file {decoded.shape[1]}x{decoded.shape[0]}")
    if reference.ndim != decoded.ndim:  # one side gray: compare in RGB
        reference, decoded = (np.stack([p] * 3, axis=-1) if p.ndim == 2 else p for p in (reference, decoded))
    lumas = [p if p.ndim == 2 else rgb_to_ycbcr(p)[0] for p in (reference, decoded)]
    return {"bytes": len(data), "bpp": 8 * len(data) / (reference.shape[0] * reference.shape[1]),
            "psnr": psnr(reference, decoded), "psnr_y": psnr(*lumas), "ms_ssim": ms_ssim(reference, decoded)}
