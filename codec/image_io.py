"""Input images to pixel arrays: any mode Pillow reads, EXIF orientation applied, alpha dropped.

Nothing here changes the caller's image: metadata is read from copies.
"""

from __future__ import annotations

import io
import os
import struct
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
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}  # not LAB, whose bands are L, A and B
# A TIFF's first IFD, which Pillow gives as its Exif, also holds the file's layout: sizes, sample format,
# strip and tile offsets, compression, colour map, subsampling, its ICC profile (kept apart) and Photoshop's
# layers. Those tags are not metadata of the image and are left out of the Exif block nnc keeps.
_TIFF_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281,
                               284, 290, 291, 292, 293, 317, 320, 321, 322, 323, 324, 325, 330, 332, 334, 338, 339,
                               340, 341, 342, 347, 512, 513, 514, 515, 517, 518, 519, 520, 521, 530, 34675, 37724})
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

    EXIF orientation is applied; 16-bit samples are scaled to 8 bits, float ones (mode F) too, from
    0..1 when none is above 1; CMYK becomes sRGB through its ICC profile where ImageCms can (else
    Pillow's plain conversion); alpha is dropped, with a warning if some pixel is not opaque; of
    several frames only the current one is taken, with a warning.
    """
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":  # MPO: a camera JPEG with previews or a stereo pair
        warnings.warn(f"the image has {frames} frames: nnc codes only frame {image.tell() + 1}", stacklevel=3)
    cmyk_profile = _cmyk_profile(image)
    image = ImageOps.exif_transpose(image)
    if _has_transparency(image):
        warnings.warn("nnc stores no alpha channel: transparency is dropped", stacklevel=3)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        samples = np.nan_to_num(np.asarray(image, dtype=np.float64), copy=False, posinf=0.0, neginf=0.0)
        peak = 65535.0 if samples.max() > 255 else 1.0 if image.mode == "F" and samples.max() <= 1 else 255.0
        return np.clip(np.rint(samples * (255.0 / peak)), 0, 255).astype(np.uint8)
    if image.mode in _GRAY_MODES:
        return np.asarray(image.convert("L"))
    if cmyk_profile is not None:
        image = ImageCms.profileToProfile(image, cmyk_profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    pixels = np.asarray(image.convert("RGB"))
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
        return np.ascontiguousarray(pixels[..., 0])
    return pixels


def _has_transparency(image: Image.Image) -> bool:
    """Whether some pixel of ``image`` is not fully opaque: an alpha band below its maximum, or a
    pixel of the transparent value (``info["transparency"]``: a gray level or colour, or for a
    palette image an index or an alpha per index)."""
    if image.mode in _ALPHA_MODES:
        return image.getchannel("A").getextrema()[0] < 255
    transparent = image.info.get("transparency")
    if transparent is None:
        return False
    pixels = np.asarray(image.convert("L") if image.mode == "1" else image)  # "1": booleans, not 0 and 255
    if image.mode == "P":
        see_through = np.flatnonzero(np.frombuffer(transparent, np.uint8) < 255) \
            if isinstance(transparent, bytes) else [transparent]
        return bool(np.isin(pixels, see_through).any())
    if pixels.ndim == 3:
        return bool(np.all(pixels[..., :3] == np.asarray(transparent)[:3], axis=-1).any())
    return bool((pixels == transparent).any())


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


def _exif_to_keep(exif_bytes: bytes) -> bytes:
    """The Exif block to store for ``exif_bytes``: its orientation reset to 1, without TIFF layout tags
    (a TIFF's own first IFD, as Pillow gives it); empty, with a warning, if Pillow cannot read it."""
    exif = Image.Exif()  # a copy: the caller's Exif keeps its orientation
    try:
        exif.load(exif_bytes)
        layout = [tag for tag in exif if tag in _TIFF_LAYOUT_TAGS]
        for tag in layout:
            del exif[tag]
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        if not len(exif):  # no tag left (or none Pillow can read): nothing to keep
            return b""
        return exif.tobytes() if layout or _ORIENTATION in exif else exif_bytes
    except (SyntaxError, ValueError, TypeError, struct.error, OSError, IndexError, KeyError):  # Pillow reads lazily
        warnings.warn("the Exif block is unreadable: not kept", stacklevel=4)
        return b""


def image_metadata(image: Image.Image, gray: bool = False, icc_profile: bytes | None = None,
                   exif: bytes | Image.Exif | None = None) -> tuple[bytes, bytes]:
    """(icc_profile, exif) to store with the pixels ``image_to_pixels`` gives (``gray``: a 2-D array).

    ``icc_profile`` and ``exif``, when given, replace the image's own. Each is empty where absent
    or over METADATA_ITEM_CAP bytes; the ICC profile also where its colour space is not that of
    the pixels (RGB, or GRAY if ``gray``): a CMYK profile once the pixels went through it, or one
    that does not fit (with a warning). The Exif orientation is reset to 1, since
    ``image_to_pixels`` applies it to the pixels; TIFF layout tags (a TIFF's own IFD) are left out; an
    unreadable Exif block is dropped with a warning. ``image`` itself is not changed.
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
        exif_bytes = _exif_to_keep(exif_bytes)
    kept = []
    for name, item in (("ICC profile", icc_profile), ("Exif block", exif_bytes)):
        if len(item) > METADATA_ITEM_CAP:
            warnings.warn(f"{name} of {len(item)} bytes is over {METADATA_ITEM_CAP} bytes: not kept", stacklevel=3)
            item = b""
        kept.append(item)
    return kept[0], kept[1]
