"""nnc through Pillow's own API."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import codec
from codec.metrics import psnr
from conftest import icc_profile, synthetic_rgb


def test_open_reads_the_header_and_load_decodes(tmp_path):
    codec.register_nnc_opener()
    source = Image.fromarray(synthetic_rgb(30, 50))
    (tmp_path / "x.nnc").write_bytes(codec.encode(source, quality=60))
    with Image.open(tmp_path / "x.nnc") as image:
        assert (image.format, image.size, image.mode) == ("NNC", (50, 30), "RGB")
        assert image._im is None  # nothing decoded yet
        pixels = np.asarray(image)
    assert pixels.shape == (30, 50, 3) and psnr(np.asarray(source), pixels) > 28
    assert np.array_equal(pixels, np.asarray(codec.decode((tmp_path / "x.nnc").read_bytes())))


def test_save_through_pillow(tmp_path):
    codec.register_nnc_opener()
    source = Image.fromarray(synthetic_rgb(24, 24)[..., 0])
    source.save(tmp_path / "low.nnc", quality=5)
    source.save(tmp_path / "high.nnc", quality=80)
    assert (tmp_path / "low.nnc").stat().st_size < (tmp_path / "high.nnc").stat().st_size
    with Image.open(tmp_path / "high.nnc") as image:
        assert image.mode == "L" and image.size == (24, 24)


def test_non_nnc_and_corrupt_files(tmp_path):
    codec.register_nnc_opener()
    Image.fromarray(synthetic_rgb(8, 8)).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").format == "PNG"
    data = codec.encode(Image.fromarray(synthetic_rgb(16, 16)), quality=50)
    (tmp_path / "cut.nnc").write_bytes(data[:-5])
    with Image.open(tmp_path / "cut.nnc") as image:
        try:
            image.load()
        except OSError as error:
            assert "truncated" in str(error)
        else:
            raise AssertionError("a truncated file must not load")


def test_save_honours_strip_icc_profile_and_exif(tmp_path):
    codec.register_nnc_opener()
    image = Image.fromarray(synthetic_rgb(16, 16))
    image.info["icc_profile"] = icc_profile("RGB")
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    image.save(tmp_path / "own.nnc")
    image.save(tmp_path / "strip.nnc", strip=True)
    image.save(tmp_path / "given.nnc", exif=exif, icc_profile=None)
    image.save(tmp_path / "bytes.nnc", exif=exif.tobytes())

    def metadata(name):
        with Image.open(tmp_path / name) as decoded:
            decoded.load()
            return decoded.info.get("icc_profile"), decoded.getexif().get(0x010F)

    assert metadata("own.nnc") == (icc_profile("RGB"), None)
    assert metadata("strip.nnc") == (None, None)
    assert metadata("given.nnc") == (None, "TestCam")
    assert metadata("bytes.nnc") == (icc_profile("RGB"), "TestCam")


def test_accept_checks_the_whole_signature():
    from codec.pillow_plugin import _accept

    data = codec.encode(Image.fromarray(synthetic_rgb(8, 8)), quality=40)
    assert _accept(data[:16])  # "NNC " would be accepted: 0x20 reads as format 2.0 (its _open then refuses it)
    assert not any(_accept(prefix) for prefix in (b"", b"NN", b"NNC", b"NNC: a text file\n", b"NNC\xf2" + data[4:16]))


def test_baseline_and_threads_through_pillow(tmp_path, photo):
    try:
        codec.register_nnc_opener(baseline=("deblock",), threads=1)
        photo.save(tmp_path / "x.nnc", quality=10, threads=1)
        data = (tmp_path / "x.nnc").read_bytes()
        with Image.open(tmp_path / "x.nnc") as image:
            assert np.array_equal(np.asarray(image), np.asarray(codec.decode(data, baseline=("deblock",))))
        photo.save(tmp_path / "base.nnc", quality=10, baseline=("deblock",))
        assert (tmp_path / "base.nnc").read_bytes() == codec.encode(photo, quality=10, baseline=("deblock",))
    finally:
        codec.register_nnc_opener()
    with Image.open(tmp_path / "x.nnc") as image:
        assert np.array_equal(np.asarray(image), np.asarray(codec.decode(data)))


def test_a_malformed_exif_keyword_is_dropped_with_a_warning(tmp_path):
    codec.register_nnc_opener()
    with pytest.warns(UserWarning, match="Exif block is unreadable"):
        Image.fromarray(synthetic_rgb(24, 24)).save(tmp_path / "x.nnc", quality=20, exif=b"garbage")
    assert "exif" not in codec.decode(tmp_path / "x.nnc").info
