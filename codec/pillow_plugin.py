"""Pillow plugin: Image.open("x.nnc") and img.save("x.nnc") after register_nnc_opener().

Opening reads the header only (size and mode); pixels are decoded on load().
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from PIL import Image, ImageFile

from . import format
from .errors import NncError
from .stages import Stages

_decode_stages = Stages()  # how files opened through Pillow decode; set by register_nnc_opener


def _accept(prefix: bytes) -> bool:
    """The file starts with the whole signature: the magic, then a format version this decoder reads."""
    magic_length = len(format.MAGIC)
    return (len(prefix) > magic_length and prefix[:magic_length] == format.MAGIC
            and prefix[magic_length] >> 4 <= format.FORMAT_VERSION_MAJOR)


class NncImageFile(ImageFile.ImageFile):
    """An .nnc file opened through Pillow: mode "RGB", or "L" for a grayscale file."""

    format = "NNC"
    format_description = "nnc image (learned codec for slow links)"

    def _open(self) -> None:
        try:
            container, _ = format.parse_header(self.fp.read(format.MAX_HEADER_SIZE))
        except NncError as error:
            raise SyntaxError(str(error)) from None
        self._size = (container.width, container.height)
        self._mode = "L" if container.hint_layout == "none" else "RGB"
        self.tile = []

    def load(self) -> Image.core.PixelAccess | None:
        if self._im is None:
            from . import decode

            self.fp.seek(0)
            try:
                decoded = decode(self.fp.read(), baseline=_decode_stages)
            except NncError as error:
                raise OSError(str(error)) from None
            self.im = decoded.im
            self.info.update(decoded.info)
        return Image.Image.load(self)


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """image.save(..., quality=, target_size=, bpp=, strip=, icc_profile=, exif=, baseline=, threads=):
    as ``codec.encode``.

    As in Pillow's own plugins, an ``icc_profile`` or ``exif`` keyword replaces the image's own
    (None or empty: none)."""
    from . import encode

    options = {key: image.encoderinfo[key] for key in ("quality", "target_size", "bpp", "strip", "icc_profile", "exif",
                                                       "baseline", "threads")
               if key in image.encoderinfo}
    for key in ("icc_profile", "exif"):
        if key in options and options[key] is None:
            options[key] = b""
    fp.write(encode(image, **options))


def register_nnc_opener(baseline: Iterable[str] = (), threads: int | None = None, look: str = "fidelity") -> None:
    """Teach Pillow to open and save .nnc files (Image.open, Image.save with format "NNC" or ".nnc").

    baseline, threads, look: how opened files decode (see ``codec.decode``); ``save`` takes its own."""
    global _decode_stages
    _decode_stages = Stages.of(baseline, threads, look)
    Image.register_open(NncImageFile.format, NncImageFile, _accept)
    Image.register_save(NncImageFile.format, _save)
    Image.register_extension(NncImageFile.format, ".nnc")
    Image.register_mime(NncImageFile.format, "image/x-nnc")
