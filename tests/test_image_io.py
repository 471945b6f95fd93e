"""Input images of every common kind become the right pixel arrays."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from PIL import Image

import codec
from codec.image_io import image_metadata, image_to_pixels
from conftest import icc_profile, synthetic_rgb


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
    rgba.putpixel((3, 4), (0, 0, 0, 128))
    with pytest.warns(UserWarning, match="alpha"):
        assert image_to_pixels(rgba).shape == (8, 8, 3)


def test_opaque_alpha_and_a_lab_image_give_no_alpha_warning():
    rgb = Image.fromarray(synthetic_rgb(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for image in (rgb.convert("RGBA"), rgb.convert("LA"), rgb.convert("LAB")):
            assert image_to_pixels(image).shape[:2] == (8, 8)
    see_through = np.asarray(rgb.convert("LA")).copy()
    see_through[0, 0, 1] = 0
    with pytest.warns(UserWarning, match="transparency is dropped"):
        image_to_pixels(Image.fromarray(see_through, "LA"))


def test_a_transparent_value_counts_only_where_a_pixel_has_it():
    gray = np.full((8, 8), 5000, np.uint16)
    for value, warns in ((5000, True), (255, False)):
        image = Image.fromarray(gray)
        image.info["transparency"] = value
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image_to_pixels(image)
        assert any("transparency is dropped" in str(w.message) for w in caught) == warns
    palette = Image.fromarray(synthetic_rgb(8, 8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    unused = (set(range(256)) - set(np.unique(np.asarray(palette)).tolist())).pop()
    for index, warns in ((unused, False), (int(np.asarray(palette)[0, 0]), True)):
        palette.info["transparency"] = index
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image_to_pixels(palette)
        assert any("transparency is dropped" in str(w.message) for w in caught) == warns


def _bilevel(white: bool) -> Image.Image:
    return Image.fromarray((np.arange(64).reshape(8, 8) % 2 == 0) & white).convert("1")


def _palette(used_index: int) -> Image.Image:
    image = Image.fromarray(synthetic_rgb(8, 8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    image.putpixel((0, 0), used_index)
    return image


@pytest.mark.parametrize("image, transparency, see_through", [
    (_bilevel(True), 255, True), (_bilevel(False), 255, False),  # white marked transparent, 1-bit
    (Image.fromarray(synthetic_rgb(8, 8)), tuple(int(v) for v in synthetic_rgb(8, 8)[0, 0]), True),
    (Image.fromarray(synthetic_rgb(8, 8)), (1, 2, 3), False),
    (_palette(9), bytes([255] * 9 + [0] + [255] * 246), True),  # alpha per palette index: index 9 clear
    (_palette(7), bytes([255] * 9 + [0] + [255] * 246), False)])
def test_transparency_of_every_kind(image, transparency, see_through):
    image.info["transparency"] = transparency
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image_to_pixels(image)
    assert any("transparency is dropped" in str(w.message) for w in caught) == see_through


def test_float_samples_from_0_to_1_are_scaled_to_8_bits():
    gray = synthetic_rgb(8, 8)[..., 0]
    assert np.array_equal(image_to_pixels(Image.fromarray(gray.astype(np.float32) / 255, "F")), gray)
    assert np.array_equal(image_to_pixels(Image.fromarray(gray.astype(np.float32), "F")), gray)


def test_a_tiff_keeps_its_exif_tags_and_not_its_layout(tmp_path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0132] = "TestCam", "2020:01:01 00:00:00"
    Image.fromarray(synthetic_rgb(24, 24)).save(tmp_path / "tagged.tif", exif=exif)
    Image.fromarray(synthetic_rgb(24, 24)).save(tmp_path / "plain.tif")
    stored = Image.Exif()
    stored.load(image_metadata(codec.open_image(tmp_path / "tagged.tif"))[1])
    assert dict(stored) == {0x010F: "TestCam", 0x0132: "2020:01:01 00:00:00"}  # no strip offsets, sizes...
    tiff = codec.open_image(tmp_path / "tagged.tif")
    assert image_metadata(tiff, exif=tiff.getexif()) == image_metadata(tiff)  # given as Pillow edits Exif
    assert image_metadata(codec.open_image(tmp_path / "plain.tif")) == (b"", b"")


def test_an_unreadable_exif_block_is_dropped_with_a_warning():
    with pytest.warns(UserWarning, match="the Exif block is unreadable: not kept"):
        assert image_metadata(Image.fromarray(synthetic_rgb(8, 8)), exif=b"not exif")[1] == b""


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


def test_animation_is_closed_and_its_first_frame_coded_with_a_warning(tmp_path):
    frames = [Image.fromarray(synthetic_rgb(16, 16, seed=seed)) for seed in (1, 2, 3)]
    for name in ("anim.gif", "anim.png", "anim.tif"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = codec.open_image(tmp_path / name)
            pixels = image_to_pixels(image)
            del image
            gc.collect()
        assert [str(w.message) for w in caught] == ["the image has 3 frames: nnc codes only frame 1"], name
        with Image.open(tmp_path / name) as first:
            assert np.array_equal(pixels, np.asarray(first.convert("RGB"))), name


def test_max_pixels_replaces_pillows_limit(tmp_path, monkeypatch):
    Image.fromarray(synthetic_rgb(40, 50)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow would refuse these 2000 pixels
    assert codec.open_image(tmp_path / "big.png", max_pixels=2000).size == (50, 40)
    assert Image.MAX_IMAGE_PIXELS == 500
    with pytest.raises(codec.LimitError, match="over the limit of 1999"):
        codec.open_image(tmp_path / "big.png", max_pixels=1999)


@pytest.mark.parametrize("gray_pixels, profile_space, kept", [
    (False, "RGB", True), (True, "GRAY", True),
    (False, "GRAY", False), (True, "RGB", False), (False, "CMYK", False),
])
def test_icc_profile_is_kept_only_for_the_coded_colour_space(gray_pixels, profile_space, kept):
    pixels = synthetic_rgb(16, 16)
    image = Image.fromarray(pixels[..., 0] if gray_pixels else pixels)
    image.info["icc_profile"] = icc_profile(profile_space)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = codec.decode(codec.encode(image, quality=40))
    assert decoded.mode == ("L" if gray_pixels else "RGB")
    assert decoded.info.get("icc_profile") == (icc_profile(profile_space) if kept else None)
    assert kept or "does not fit" in str(caught[-1].message)


def test_cmyk_input_is_converted_through_its_profile(tmp_path):
    cmyk = Image.new("CMYK", (16, 16))
    cmyk.paste((255, 0, 0, 0), (0, 0, 8, 16))  # cyan ink on the left half, paper on the right
    cmyk.save(tmp_path / "profiled.tif", icc_profile=icc_profile("CMYK"))
    cmyk.save(tmp_path / "plain.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a profile that was applied is dropped silently
        profiled = codec.decode(codec.encode(tmp_path / "profiled.tif", quality=90))
    plain = codec.decode(codec.encode(tmp_path / "plain.tif", quality=90))
    assert "icc_profile" not in profiled.info and "icc_profile" not in plain.info
    # the test profile turns any ink black; Pillow's plain conversion keeps cyan
    left, right = np.asarray(profiled.convert("RGB"))[:, :6], np.asarray(profiled.convert("RGB"))[:, 10:]
    assert left.max() < 60 and right.min() > 200
    assert np.asarray(plain)[:, :6, 0].max() < 60 and np.asarray(plain)[:, :6, 1:].min() > 200
