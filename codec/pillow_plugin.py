"""Pillow plugin: Image.open("x.nnc") and img.save("x.nnc") after register_nnc_opener().

Opening reads the header only (size and mode); pixels are decoded on load().
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from . import format
from .errors import NncError


def _accept(prefix: bytes) -> bool:
    return prefix[: len(format.MAGIC)] == format.MAGIC


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
                decoded = decode(self.fp.read())
            except NncError as error:
                raise OSError(str(error)) from None
            self.im = decoded.im
            self.info.update(decoded.info)
        return Image.Image.load(self)


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from . import encode

    options = {key: image.encoderinfo[key] for key in ("quality", "target_size", "bpp") if key in image.encoderinfo}
    fp.write(encode(image, **options))


def register_nnc_opener() -> None:
    """Teach Pillow to open and save .nnc files (Image.open, Image.save with format "NNC" or ".nnc")."""
    Image.register_open(NncImageFile.format, NncImageFile, _accept)
    Image.register_save(NncImageFile.format, _save)
    Image.register_extension(NncImageFile.format, ".nnc")
    Image.register_mime(NncImageFile.format, "image/x-nnc")
