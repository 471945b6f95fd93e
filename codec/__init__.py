"""nnc: a learned image codec for slow links. Public API: encode(), decode(), info(), register_nnc_opener()."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from . import format, luma
from .errors import FormatError, InputImageError, LimitError, ModelMismatchError, NncError, WeightsError
from .image_io import icc_color_space, image_metadata, image_to_pixels, open_image
from .models import COLORIZE_FINE, DEBLOCK_UNFILTERED
from .pillow_plugin import register_nnc_opener
from .pipeline import QUALITY_RANGE, EncodeReport, ImageEncoder, decode_file_bytes
from .restore import restore
from .stages import LEARNED_STAGES, LOOK_CHOICES, STAGES, Stages
from .weights import model_version, release_models

__version__ = "0.17.2"
DEFAULT_QUALITY = 30

__all__ = [
    "encode", "encode_with_report", "decode", "info", "compare", "restore", "open_image", "register_nnc_opener",
    "__version__", "DEFAULT_QUALITY", "STAGES", "LEARNED_STAGES", "LOOK_CHOICES", "Stages",
    "NncError", "FormatError", "LimitError", "ModelMismatchError", "InputImageError", "WeightsError",
]


def encode_with_report(image: Image.Image | str | os.PathLike, quality: int | None = None,
                       target_size: int | None = None, bpp: float | None = None,
                       max_pixels: int = format.DEFAULT_MAX_PIXELS, baseline: Iterable[str] | Stages = (),
                       strip: bool = False, threads: int | None = None, icc_profile: bytes | None = None,
                       exif: bytes | Image.Exif | None = None,
                       progress: Callable[[str], None] | None = None) -> tuple[bytes, EncodeReport]:
    """Encode a Pillow image (or the image file at a path); returns the .nnc bytes and what the encoder chose.

    Give at most one of: ``quality`` (1..100, default 30; higher is larger), ``target_size``
    (bytes: the best quality whose file fits) or ``bpp`` (bits per pixel: a target size of
    bpp * W * H / 8 bytes). Raises NncError if even quality 1 does not fit the target.
    ``baseline`` names stages (see STAGES) to run as their classical baseline when the encoder
    judges its candidates by the decoder's output (or is a ``Stages``); ``threads``: torch's
    thread count for the learned stages, and (up to 2) how many x265 candidates are coded at
    once. The ICC profile (if it fits the coded pixels: RGB, or gray) and Exif block are kept
    (each up to 64 KiB) unless ``strip``; ``icc_profile`` and
    ``exif``, when given, replace the image's own. Images over ``max_pixels`` pixels are refused
    (LimitError). ``image`` is never changed. ``progress``, if given, is told of each quality a
    ``target_size`` or ``bpp`` search tries, in lines like "target 5,000 bytes: trying quality 51"
    and "target 5,000 bytes: quality 51 gives 4,321 bytes", and of each candidate the encoder codes
    or network it runs ("quality 51: coding luma x2 at x265 quality 44").
    """
    stages = Stages.of(baseline, threads)
    _check_rate(quality, target_size, bpp)
    if not isinstance(image, Image.Image):
        image = open_image(image, max_pixels)
    if image.width * image.height > max_pixels:
        raise LimitError(f"image is {image.width}x{image.height} = {image.width * image.height} pixels, over the "
                         f"limit of {max_pixels} (--max-pixels)")
    pixels = image_to_pixels(image)
    height, width = pixels.shape[:2]
    metadata = (b"", b"") if strip else image_metadata(image, pixels.ndim == 2, icc_profile, exif)
    encoder = ImageEncoder(pixels, *metadata, stages=stages, progress=progress)
    if bpp is not None:
        target_size = int(bpp * width * height / 8)
    if target_size is None:
        return encoder.encode(DEFAULT_QUALITY if quality is None else quality)
    return _largest_fitting(encoder, target_size, progress or (lambda message: None))


def _check_rate(quality: int | None, target_size: int | None, bpp: float | None) -> None:
    """ValueError unless at most one of the rate options is given, and it is in range."""
    if sum(option is not None for option in (quality, target_size, bpp)) > 1:
        raise ValueError("give only one of quality, target_size and bpp")
    low, high = QUALITY_RANGE
    if quality is not None and (not isinstance(quality, (int, np.integer)) or isinstance(quality, bool)
                                or not low <= quality <= high):
        raise ValueError(f"quality must be a whole number from {low} to {high}, not {quality!r}")
    if target_size is not None and (not isinstance(target_size, (int, np.integer)) or isinstance(target_size, bool)
                                    or target_size < 1):
        raise ValueError(f"target_size must be a whole number of bytes, at least 1, not {target_size!r}")
    if bpp is not None and (isinstance(bpp, bool) or not (isinstance(bpp, (int, float, np.number))
                                                          and 0 < bpp < math.inf)):
        raise ValueError(f"bpp must be a number of bits per pixel above 0, not {bpp!r}")


def _read(data: bytes | str | os.PathLike) -> bytes:
    """The bytes of an .nnc file given as bytes or as a path."""
    return Path(data).read_bytes() if isinstance(data, (str, os.PathLike)) else bytes(data)


def _largest_fitting(encoder: ImageEncoder, target_size: int,
                     progress: Callable[[str], None]) -> tuple[bytes, EncodeReport]:
    """Bisect quality for the largest file of at most ``target_size`` bytes."""
    low, high = QUALITY_RANGE

    def attempt_at(quality: int) -> tuple[bytes, EncodeReport]:
        progress(f"target {target_size:,} bytes: trying quality {quality}")
        attempt = encoder.encode(quality)
        progress(f"target {target_size:,} bytes: quality {quality} gives {len(attempt[0]):,} bytes")
        return attempt

    best = attempt_at(low)
    if len(best[0]) > target_size:
        raise NncError(f"even the lowest quality needs {len(best[0])} bytes, over the target of {target_size}")
    while low < high:
        middle = (low + high + 1) // 2
        attempt = attempt_at(middle)
        if len(attempt[0]) <= target_size:
            low, best = middle, attempt
        else:
            high = middle - 1
    return best


def encode(image: Image.Image | str | os.PathLike, quality: int | None = None, target_size: int | None = None,
           bpp: float | None = None, baseline: Iterable[str] | Stages = (), strip: bool = False,
           threads: int | None = None, max_pixels: int = format.DEFAULT_MAX_PIXELS,
           icc_profile: bytes | None = None, exif: bytes | Image.Exif | None = None) -> bytes:
    """Encode a Pillow image (or the image file at a path) to .nnc bytes (see ``encode_with_report``)."""
    return encode_with_report(image, quality, target_size, bpp, max_pixels, baseline, strip, threads, icc_profile,
                              exif)[0]


def decode(data: bytes | str | os.PathLike, max_pixels: int = format.DEFAULT_MAX_PIXELS,
           baseline: Iterable[str] | Stages = (), partial: bool = False, threads: int | None = None,
           look: str | None = None, progress: Callable[[str], None] | None = None) -> Image.Image:
    """Decode .nnc bytes (or the .nnc file at a path) to a Pillow image: mode "RGB", or "L" for a
    grayscale file.

    The kept ICC profile (only if it fits the image's mode) and Exif block are in ``image.info``
    ("icc_profile", "exif"). With ``partial``, a file cut short after its luma section decodes to
    what arrived, with ``image.info["nnc_partial"]`` True and ``image.info["nnc_lost"]`` saying
    what was cut off: "color hints" (the image is then grayscale), "metadata" (no ICC profile
    or Exif) or "other bytes" (bytes after the last complete section that are not a section:
    a section of a later format, cut short, or data appended to the file). ``baseline`` names
    stages to run as their classical baseline (or is a ``Stages``); ``threads``: torch's thread
    count for the learned stages; ``look``: "fidelity" (default: least error) or "perceptual"
    (sharper texture from the upscaler's perceptual weights, where the file's release has them;
    see LOOK_CHOICES); ``progress``, if given, is told of each decoder stage as it starts
    ("stage 2: upscaling the luma").
    """
    data = _read(data)
    decoded = decode_file_bytes(data, max_pixels, partial, Stages.of(baseline, threads, look), progress)
    image = Image.fromarray(decoded.pixels, mode="L" if decoded.pixels.ndim == 2 else "RGB")
    if decoded.icc_profile and icc_color_space(decoded.icc_profile) == ("GRAY" if image.mode == "L" else "RGB"):
        image.info["icc_profile"] = decoded.icc_profile
    if decoded.exif:
        image.info["exif"] = decoded.exif
    if decoded.partial:
        container = format.parse_container(data, max_pixels, partial=True)
        color_lost = image.mode == "L" and container.hint_layout != "none"
        image.info["nnc_partial"] = True
        image.info["nnc_lost"] = "color hints" if color_lost else \
            "metadata" if container.cut_section == "metadata" else "other bytes"
    return image


def info(data: bytes | str | os.PathLike, max_pixels: int = format.DEFAULT_MAX_PIXELS) -> dict:
    """Header fields and section sizes of .nnc bytes (or the .nnc file at a path), without decoding pixels.

    A file cut short (or with bytes after its sections that are not one) still gives its header and
    complete sections, with "truncated" True and "cut_section" the section it ends in (None: the
    bytes are not a section it may still hold)."""
    data = _read(data)
    container = format.parse_container(data, max_pixels, partial=True)
    return {
        "format_version": "{}.{}".format(*container.format_version),
        "model_version": container.model_version.hex(),
        "decoder_models": _release_description(container.model_version),
        "width": container.width,
        "height": container.height,
        "luma_scale": container.luma_scale,
        "luma_codec": container.luma_codec,
        "luma_loop_filters": _luma_loop_filters(container),
        "hint_layout": container.hint_layout,
        "classical_color": container.classical_color,
        "deblock_level": container.deblock_level,  # None: a file of format 0.x (spec 3.1)
        # the share of each chroma plane's learned correction stage 3 applies (None: it runs no network)
        "color_strength": container.color_strength
        if format.runs_the_colorizer(container.hint_layout, container.classical_color) else None,
        "bytes": len(data),
        "bpp": 8 * len(data) / (container.width * container.height),
        "sections": dict(container.section_sizes),
        "truncated": container.truncated or not container.holds_the_image,
        # where the file ends inside a section: its name, or None for bytes that are not a known one
        "cut_section": container.cut_section,
    }


def _luma_loop_filters(container: format.Container) -> bool | None:
    """Whether the file's luma stream was coded with HEVC's loop filters (stage 4 picks its network
    by it, spec 6), for ``info``; None without a complete, readable luma section."""
    if "luma" not in container.sections:
        return None
    try:
        return luma.loop_filtered(container.sections["luma"], container.luma_codec)
    except FormatError:
        return None


def _release_description(version: bytes) -> str:
    """The models this nnc decodes a file of model ``version`` with, for ``info``."""
    try:
        release = release_models(version)
    except ModelMismatchError:
        return f"unknown: this nnc cannot decode it (it writes {model_version().hex()})"
    names = {DEBLOCK_UNFILTERED: "deblock (full-size luma without loop filters)",
             COLORIZE_FINE: "color (thumbnails at 1/2)"}
    return ", ".join(f"{names.get(entry, entry)} {key}" for entry, key in release.items()) or \
        "none (every stage classical)"


def compare(source: Image.Image | str | os.PathLike, data: bytes | str | os.PathLike,
            max_pixels: int = format.DEFAULT_MAX_PIXELS) -> dict:
    """bytes, bpp, psnr (over all samples), psnr_y and ms_ssim (nan under 161 px) of .nnc bytes
    (or the .nnc file at a path) against their source image (or the image file at a path).
    NncError if the sizes differ; LimitError for either over ``max_pixels`` pixels."""
    from .color import rgb_to_ycbcr
    from .metrics import ms_ssim, psnr

    if not isinstance(source, Image.Image):
        source = open_image(source, max_pixels)
    data = _read(data)
    reference, decoded = image_to_pixels(source), decode_file_bytes(data, max_pixels).pixels
    if reference.shape[:2] != decoded.shape[:2]:
        raise NncError(f"the source is {reference.shape[1]}x{reference.shape[0]}, "
                       f"the .nnc file {decoded.shape[1]}x{decoded.shape[0]}")
    if reference.ndim != decoded.ndim:  # one side gray: compare in RGB
        reference, decoded = (np.stack([p] * 3, axis=-1) if p.ndim == 2 else p for p in (reference, decoded))
    lumas = [p if p.ndim == 2 else rgb_to_ycbcr(p)[0] for p in (reference, decoded)]
    return {"bytes": len(data), "bpp": 8 * len(data) / (reference.shape[0] * reference.shape[1]),
            "psnr": psnr(reference, decoded), "psnr_y": psnr(*lumas), "ms_ssim": ms_ssim(reference, decoded)}
