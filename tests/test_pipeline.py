"""Round trips through the public API: sizes, modes, determinism, rate control."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec.metrics import psnr
from codec.pipeline import ImageEncoder, x265_qualities
from conftest import icc_profile, synthetic_rgb


@pytest.mark.parametrize("height, width", [(1, 1), (1, 13), (13, 1), (9, 17), (21, 33), (2, 70)])
def test_round_trip_any_size(height, width):
    image = Image.fromarray(synthetic_rgb(height, width, seed=height))
    decoded = codec.decode(codec.encode(image, quality=60))
    assert decoded.size == (width, height) and decoded.mode == "RGB"


def test_round_trip_quality(rgb_image):
    decoded = codec.decode(codec.encode(rgb_image, quality=70))
    assert psnr(np.asarray(rgb_image), np.asarray(decoded)) > 30


def test_grayscale_stores_no_hints():
    gray = Image.fromarray(synthetic_rgb(24, 40)[..., 1])
    data = codec.encode(gray, quality=50)
    assert codec.info(data)["hint_layout"] == "none" and "hints" not in codec.info(data)["sections"]
    decoded = codec.decode(data)
    assert decoded.mode == "L" and psnr(np.asarray(gray), np.asarray(decoded)) > 30


def test_rgb_with_equal_channels_is_grayscale():
    gray = synthetic_rgb(16, 16)[..., 0]
    data = codec.encode(Image.fromarray(np.stack([gray] * 3, axis=-1)), quality=50)
    assert codec.info(data)["hint_layout"] == "none"


def test_encode_is_deterministic(photo):
    assert codec.encode(photo, quality=20) == codec.encode(photo, quality=20)


def test_encode_gives_the_same_bytes_with_one_or_two_threads(photo):
    """Two threads code the x265 candidates side by side (luma at x1, x2, x4 and thumbnails of
    every size: pictures of different sizes at once) and run the networks' tiles; one does all
    in turn. The file is the same."""
    assert codec.encode(photo, quality=20, threads=1) == codec.encode(photo, quality=20, threads=2)


def test_decode_is_identical_on_repeat_and_across_thread_counts(photo):
    data = codec.encode(photo, quality=20)
    decoded = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            decoded.append(np.asarray(codec.decode(data)))
    finally:
        torch.set_num_threads(previous)
    assert all(np.array_equal(decoded[0], other) for other in decoded[1:])


def test_size_grows_with_quality(photo):
    encoder = ImageEncoder(np.asarray(photo))
    sizes = [len(encoder.encode(quality)[0]) for quality in (1, 10, 20, 30, 45, 60, 80)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] / 10


@pytest.mark.parametrize("qualities", [range(24, 40), range(46, 54)])  # 50: full-size chroma becomes a candidate
def test_size_and_psnr_never_fall_as_quality_rises_step_by_step(photo, qualities):
    """Every step of quality, not only far-apart ones: the x265 qualities tried sit on a fixed lattice."""
    encoder = ImageEncoder(np.asarray(photo))
    reports = [encoder.encode(quality)[1] for quality in qualities]
    sizes, psnrs = [report.bytes for report in reports], [report.psnr for report in reports]
    assert sizes == sorted(sizes) and psnrs == sorted(psnrs), list(zip(sizes, psnrs))


def test_the_top_of_the_scale_keeps_improving_to_near_lossless(photo):
    """Quality 85 -> 95 -> 100 each gain PSNR, and 100 is near-lossless (chroma at full size)."""
    encoder = ImageEncoder(np.asarray(photo))
    reports = [encoder.encode(quality)[1] for quality in (85, 95, 100)]
    assert [report.psnr for report in reports] == sorted({report.psnr for report in reports})
    assert reports[-1].psnr >= 50.0
    assert reports[-1].hint_layout == "grid" and reports[-1].hint_params["factor"] == 1


def test_x265_qualities_slide_on_a_fixed_lattice():
    for log2 in (0, 1, 2, 3):
        for quality in range(1, 100):
            now, above = x265_qualities(quality, log2, False), x265_qualities(quality + 1, log2, False)
            assert len(now) <= 3 and all(value % 4 == 0 or value == 100 for value in now)
            assert min(above) >= min(now) and max(above) >= max(now)


def test_lowest_quality_is_very_small(photo):
    data = codec.encode(photo, quality=1)
    assert 8 * len(data) / (photo.width * photo.height) < 0.06


def test_target_size_gives_the_largest_file_that_fits(photo):
    target = 1500
    data, report = codec.encode_with_report(photo, target_size=target)
    assert len(data) <= target
    assert len(codec.encode(photo, quality=report.quality + 1)) > target


def test_bpp_target(photo):
    data = codec.encode(photo, bpp=0.3)
    assert 8 * len(data) / (photo.width * photo.height) <= 0.3


def test_unreachable_target_size_is_a_clear_error(photo):
    with pytest.raises(codec.NncError, match="lowest quality"):
        codec.encode(photo, target_size=50)


def test_segments_layout_round_trips(photo):
    """At the lowest rates hints follow the luma's segments; the decoder must find the same ones."""
    from codec import chroma
    from codec.color import rgb_to_ycbcr
    from codec.luma import encode_luma

    luma, cb, cr = rgb_to_ycbcr(np.asarray(photo))
    stream = encode_luma(luma, 2, 30).stream
    candidate = chroma.encode_segment_hints(cb, cr, stream, 6, 4)
    hints = chroma.read_hints("segments", candidate.payload, stream, *cb.shape)
    assert np.array_equal(hints.labels, candidate.hints.labels)
    assert all(np.array_equal(read, coded) for read, coded in zip(hints.levels, candidate.hints.levels))
    full_luma = np.zeros(cb.shape, np.uint8)
    decoded = chroma.colorize(full_luma, hints)
    assert all(np.array_equal(coded, read) for coded, read in zip(chroma.colorize(full_luma, candidate.hints), decoded))
    assert candidate.params["hints"] > 10


def test_too_many_pixels_is_refused_before_encoding():
    with pytest.raises(codec.LimitError):
        codec.encode_with_report(Image.new("RGB", (300, 300)), max_pixels=10_000)


def test_icc_and_exif_are_kept_unless_stripped():
    image = Image.fromarray(synthetic_rgb(20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    image.info["icc_profile"] = icc_profile("RGB")
    image.readonly = 0
    image.getexif().update(exif)
    decoded = codec.decode(codec.encode(image, quality=40))
    assert decoded.info["icc_profile"] == image.info["icc_profile"]
    kept = Image.Exif()
    kept.load(decoded.info["exif"])
    assert kept[0x010F] == "TestCam" and kept[0x0112] == 1  # pixels are stored upright
    assert "icc_profile" not in codec.decode(codec.encode(image, quality=40, strip=True)).info


def test_huge_exif_is_dropped_with_a_warning():
    image = Image.fromarray(synthetic_rgb(8, 8))
    image.getexif()[0x010E] = "x" * 70_000  # ImageDescription
    with pytest.warns(UserWarning, match="Exif block"):
        data = codec.encode(image, quality=40)
    assert "exif" not in codec.decode(data).info and len(data) < 2000


def test_partial_decode_of_a_file_cut_after_its_luma():
    from codec import format

    data = codec.encode(Image.fromarray(synthetic_rgb(40, 40)), quality=50)
    cut = data[: len(data) - format.parse_container(data).section_sizes["hints"] + 3]
    with pytest.raises(codec.FormatError, match="truncated"):
        codec.decode(cut)
    partial = codec.decode(cut, partial=True)
    assert partial.mode == "L" and partial.info["nnc_partial"] and partial.size == (40, 40)
    assert "nnc_partial" not in codec.decode(data, partial=True).info


def test_encode_never_changes_the_callers_image(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated: stored 30 wide, 10 high
    exif[0x010F] = "TestCam"
    Image.fromarray(synthetic_rgb(10, 30)).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "rotated.jpg") as image:
        info = dict(image.info)
        first, second = codec.encode(image, quality=40), codec.encode(image, quality=40)
        assert first == second and codec.decode(first).size == (10, 30)
        assert dict(image.getexif()) == dict(exif) and image.info == info and image.size == (30, 10)


def test_encode_takes_a_path(tmp_path):
    Image.fromarray(synthetic_rgb(20, 30)).save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as image:
        expected = codec.encode(image, quality=40)
    assert codec.encode(tmp_path / "p.png", quality=40) == codec.encode(str(tmp_path / "p.png"), quality=40) == expected
    with pytest.raises(codec.LimitError):
        codec.encode(tmp_path / "p.png", max_pixels=100)


def test_decode_drops_a_profile_that_does_not_fit_the_pixels():
    data = ImageEncoder(synthetic_rgb(16, 16), icc_profile("CMYK")).encode(40)[0]  # as an older encoder kept it
    assert "icc_profile" not in codec.decode(data).info
    data = ImageEncoder(synthetic_rgb(16, 16), icc_profile("RGB")).encode(40)[0]
    assert codec.decode(data).info["icc_profile"] == icc_profile("RGB")


def test_partial_decode_says_what_was_lost():
    from codec import format

    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    data = codec.encode(Image.fromarray(synthetic_rgb(40, 40)), quality=50, exif=exif)
    sizes = format.parse_container(data).section_sizes
    in_hints = codec.decode(data[: len(data) - sizes["metadata"] - sizes["hints"] + 3], partial=True)
    in_metadata = codec.decode(data[:-2], partial=True)
    assert (in_hints.mode, in_hints.info["nnc_lost"]) == ("L", "color hints")
    assert (in_metadata.mode, in_metadata.info["nnc_lost"]) == ("RGB", "metadata")
    assert "exif" not in in_metadata.info and in_metadata.info["nnc_partial"]


@pytest.mark.parametrize("quality", [1, 20, 60])
def test_the_reported_psnr_is_that_of_the_decoded_file(photo, quality):
    """The encoder composes the decoder's output itself: it must be exactly what decoding the file gives."""
    source = np.asarray(photo)
    for pixels in (source, np.asarray(photo.convert("L"))):
        data, report = ImageEncoder(pixels).encode(quality)
        assert report.psnr == psnr(pixels, np.asarray(codec.decode(data)))


def test_the_api_reads_paths_and_refuses_rates_out_of_range(tmp_path):
    Image.fromarray(synthetic_rgb(24, 24)).save(tmp_path / "a.png")
    data = codec.encode(tmp_path / "a.png", quality=20)
    (tmp_path / "a.nnc").write_bytes(data)
    assert np.array_equal(np.asarray(codec.decode(tmp_path / "a.nnc")), np.asarray(codec.decode(data)))
    assert codec.info(str(tmp_path / "a.nnc")) == codec.info(data)
    by_path, by_bytes = codec.compare(tmp_path / "a.png", tmp_path / "a.nnc"), codec.compare(Image.open(
        tmp_path / "a.png"), data)
    assert np.isnan(by_path.pop("ms_ssim")) and np.isnan(by_bytes.pop("ms_ssim"))  # too small for MS-SSIM
    assert by_path == by_bytes
    for rate, message in ((dict(quality=20.5), "quality must be a whole number from 1 to 100"),
                          (dict(quality=0), "quality"), (dict(quality=True), "quality"),
                          (dict(target_size=0), "target_size must be"), (dict(bpp=-1.0), "bpp must be"),
                          (dict(bpp=float("nan")), "bpp must be")):
        with pytest.raises(ValueError, match=message):
            codec.encode(tmp_path / "a.png", **rate)
