"""Shared fixtures: synthetic images (no data outside the repo) and the shipped sample photo."""

from __future__ import annotations

import functools
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

SAMPLE_PHOTO = Path(__file__).parents[1] / "samples" / "kodim23.png"


def synthetic_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8: colour gradients, a disc and mild noise, like a small photo."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    red = 255 * xs / max(width - 1, 1)
    green = 255 * ys / max(height - 1, 1)
    blue = np.where((ys - height / 2) ** 2 + (xs - width / 3) ** 2 < (min(height, width) / 3) ** 2, 200, 40)
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


@functools.cache  # the same bytes each time: LittleCMS dates the sRGB profile it makes
def icc_profile(color_space: str) -> bytes:
    """A small valid ICC profile whose colour space is "RGB" (sRGB), "GRAY" (gamma 1) or "CMYK".

    The CMYK one maps any ink to black (a 2-point lut8 to Lab), so a conversion through it is
    easy to tell from Pillow's plain CMYK -> RGB (cyan ink stays cyan there)."""
    if color_space == "RGB":
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))

    d50 = xyz(0.9642, 1.0, 0.8249)
    tags = {b"desc": b"desc" + bytes(4) + struct.pack(">I", 5) + b"test\0" + bytes(78), b"wtpt": d50}
    if color_space == "GRAY":
        device_class, connection_space = b"mntr", b"XYZ "
        tags[b"kTRC"] = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100)
    else:
        device_class, connection_space = b"prtr", b"Lab "
        identity = bytes(range(256))
        corners = b"".join(bytes([255 if corner == 0 else 0, 128, 128]) for corner in range(16))
        tags[b"A2B0"] = (b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0,
                                                                               65536)
                         + identity * 4 + corners + identity * 3)
    table_size = 4 + 12 * len(tags)
    entries, bodies = b"", b""
    for signature, body in tags.items():
        body += bytes(-len(body) % 4)
        entries += struct.pack(">4sII", signature, 128 + table_size + len(bodies), len(body))
        bodies += body
    header = (struct.pack(">I4sI4s4s4s", 128 + table_size + len(bodies), bytes(4), 0x02100000, device_class,
                          color_space.ljust(4).encode(), connection_space)
              + bytes(12) + b"acsp" + bytes(28) + d50[8:] + bytes(48))
    return header + struct.pack(">I", len(tags)) + entries + bodies


@pytest.fixture
def rgb_image() -> Image.Image:
    return Image.fromarray(synthetic_rgb(40, 56))


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A 256x192 crop of the shipped Kodak sample: real photo statistics, fast to code."""
    with Image.open(SAMPLE_PHOTO) as image:
        return image.convert("RGB").crop((300, 100, 556, 292))
