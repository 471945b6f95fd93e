"""Input images of every common kind become the right pixel arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import codec
from codec.image_io import image_to_pixels
from conftest import synthetic_rgb


def test_sixteen_bit_gray_is_scaled_to_eight_bits():
    samples = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    pixels = image_to_pixels(Image.fromarray(samples))
    assert pixels.dtype == np.uint8 and pixels.ndim == 2
    assert pixels[-1, -1] == round(63000 * 255 / 65535)


def test_palette_image_becomes_rgb():
    image = Image.fromarray(synthetic_rgb(16, 16)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert image_to_pixels(image).shape == (16, 16, 3)


def test_alpha_is_dropped_with_a_warning():
    rgba = Image.fromarray(synthetic_rgb(8, 8)).convert("RGBA")
    with pytest.warns(UserWarning, match="alpha"):
        assert image_to_pixels(rgba).shape == (8, 8, 3)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(synthetic_rgb(10, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    assert image_to_pixels(codec.open_image(str(tmp_path / "rotated.jpg"))).shape == (30, 10, 3)


def test_heic_input_is_read(tmp_path):
    import pillow_heif

    pillow_heif.from_pillow(Image.fromarray(synthetic_rgb(16, 24))).save(tmp_path / "x.heic", quality=90)
    assert image_to_pixels(codec.open_image(str(tmp_path / "x.heic"))).shape == (16, 24, 3)
