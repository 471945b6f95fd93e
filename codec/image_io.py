"""Input images to pixel arrays: any mode Pillow reads, EXIF orientation applied, alpha dropped.

Nothing here changes the caller's image: metadata is read from copies.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from contextlib import nullcontext
from typing import IO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InputImageError, LimitError
from .format import DEFAULT_MAX_PIXELS

METADATA_ITEM_CAP = 64 * 1024  # bytes: a larger ICC profile or Exif block is dropped, with a warning
_ORIENTATION = 0x0112
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
_PILLOW_LIMIT_LOCK = threading.Lock()  # open_image lifts Pillow's global pixel limit while it opens


def open_image(source: str | os.PathLike | IO[bytes], max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file (or a binary stream) with Pillow, HEIC/HEIF too: its first frame, loaded.

    An image of more than ``max_pixels`` pixels is refused (LimitError) before its pixels are
    decoded; ``max_pixels`` replaces Pillow's own decompression-bomb limit when it is higher. A file
    opened from a path is closed on return, whatever its format (animations too).
    """
    import pillow_heif

    pillow_heif.register_heif_opener()
    is_path = isinstance(source, (str, os.PathLike))
    name = os.fspath(source) if is_path else getattr(source, "name", "<stream>")
    try:
        with open(source, "rb") if is_path else nullcontext(source) as file:
            image = _open_within_limit(file, max_pixels, name)
            if image.width * image.height > max_pixels:
                raise LimitError(f"image {name} is {image.width}x{image.height} = {image.width * image.height} "
                                 f"pixels, over the limit of {max_pixels} (--max-pixels)")
            getattr(image, "n_frames", 1)  # counting frames may seek the file: before loading the first
            image.load()
            image.getexif().tobytes()  # some formats read Exif from the file: while it is open
    except UnidentifiedImageError:
        raise InputImageError(f"cannot read image {name}: not in an image format nnc reads") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InputImageError(f"cannot read image {name}: {str(error).splitlines()[0]}") from None
    return image


def _open_within_limit(file: IO[bytes], max_pixels: int, name: str) -> Image.Image:
    """Image.open, with Pillow's global limit raised to ``max_pixels`` (open_image checks its own)."""
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is not None:
            Image.MAX_IMAGE_PIXELS = max(pillow_limit, max_pixels)
        try:
            return Image.open(file)
        except Image.DecompressionBombError:
            raise LimitError(f"image {name} is over the limit of {max_pixels} pixels (--max-pixels)") from None
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit


def image_to_pixels(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or (H, W) uint8 when the image is grayscale (also RGB with R = G = B).

    EXIF orientation is applied; 16-bit samples are scaled to 8 bits; CMYK becomes sRGB through its
    ICC profile where ImageCms can (else Pillow's plain conversion); alpha is dropped with a warning;
    of several frames only the current one is taken, with a warning.
    """
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":  # MPO: a camera JPEG with previews or a stereo pair
        warnings.warn(f"the image has {frames} frames: nnc codes only frame {image.tell() + 1}", stacklevel=3)
    cmyk_profile = _cmyk_profile(image)
    image = ImageOps.exif_transpose(image)
    if "A" in image.getbands() or "transparency" in image.info:
        warnings.warn("nnc stores no alpha channel: transparency is dropped", stacklevel=3)
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if samples.max() > 255 else 255.0
        return np.clip(np.rint(samples * (255.0 / peak)), 0, 255).astype(np.uint8)
    if image.mode in _GRAY_MODES:
        return np.asarray(image.convert("L"))
    if cmyk_profile is not None:
        image = ImageCms.profileToProfile(image, cmyk_profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    pixels = np.asarray(image.convert("RGB"))
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
        return np.ascontiguousarray(pixels[..., 0])
    return pixels


def icc_color_space(profile: bytes) -> str | None:
    """The data colour space of an ICC profile ("RGB", "GRAY", "CMYK", ...); None if ImageCms cannot read it."""
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space.strip()
    except (OSError, ImageCms.PyCMSError):
        return None


def _cmyk_profile(image: Image.Image) -> ImageCms.ImageCmsProfile | None:
    """The CMYK ICC profile of a CMYK image, if ImageCms reads it and can convert through it."""
    profile = image.info.get("icc_profile")
    if image.mode != "CMYK" or not profile or icc_color_space(profile) != "CMYK":
        return None
    cms_profile = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    try:
        ImageCms.buildTransform(cms_profile, ImageCms.createProfile("sRGB"), "CMYK", "RGB")
    except ImageCms.PyCMSError:
        return None
    return cms_profile


def image_metadata(image: Image.Image, gray: bool = False, icc_profile: bytes | None = None,
                   exif: bytes | Image.Exif | None = None) -> tuple[bytes, bytes]:
    """(icc_profile, exif) to store with the pixels ``image_to_pixels`` gives (``gray``: a 2-D array).

    ``icc_profile`` and ``exif``, when given, replace the image's own. Each is empty where absent
    or over METADATA_ITEM_CAP bytes; the ICC profile also where its colour space is not that of
    the pixels (RGB, or GRAY if ``gray``): a CMYK profile once the pixels went through it, or one
    that does not fit (with a warning). The Exif orientation is reset to 1, since
    ``image_to_pixels`` applies it to the pixels. ``image`` itself is not changed.
    """
    if icc_profile is None:
        icc_profile = image.info.get("icc_profile") or b""
    output_space = "GRAY" if gray else "RGB"
    if icc_profile and (space := icc_color_space(icc_profile)) != output_space:
        if space is None:
            warnings.warn("the ICC profile is unreadable: not kept", stacklevel=3)
        elif _cmyk_profile(image) is None or space != "CMYK":
            warnings.warn(f"the {space} ICC profile does not fit the {output_space} pixels: not kept", stacklevel=3)
        icc_profile = b""
    if exif is None:
        exif = image.getexif()
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes() if len(exif) else b""
    exif_bytes = exif or b""
    if exif_bytes:
        reset = Image.Exif()  # a copy: the caller's Exif keeps its orientation
        reset.load(exif_bytes)
        if _ORIENTATION in reset:
            reset[_ORIENTATION] = 1
            exif_bytes = reset.tobytes()
    kept = []
    for name, item in (("ICC profile", icc_profile), ("Exif block", exif_bytes)):
        if len(item) > METADATA_ITEM_CAP:
            warnings.warn(f"{name} of {len(item)} bytes is over {METADATA_ITEM_CAP} bytes: not kept", stacklevel=3)
            item = b""
        kept.append(item)
    return kept[0], kept[1]
