"""``nnc restore``: the jpeg deblocker cleans ordinary JPEG files and never touches its input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import codec
from cli import main
from codec.metrics import psnr
from codec.restore import jpeg_quality


def _jpeg(image: Image.Image, quality: int, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling=2, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [5, 10, 25, 50, 75, 95])
def test_quality_is_read_back_from_the_quantisation_tables(photo, quality):
    with Image.open(io.BytesIO(_jpeg(photo, quality))) as jpeg:
        assert jpeg_quality(jpeg.quantization[0]) == quality


@pytest.mark.parametrize("quality", [10, 40])
def test_restore_raises_psnr(photo, quality):
    with Image.open(io.BytesIO(_jpeg(photo, quality))) as jpeg:
        before = np.asarray(jpeg.convert("RGB"))
        restored = codec.restore(jpeg)
    source = np.asarray(photo)
    assert restored.mode == "RGB" and restored.size == photo.size
    assert psnr(source, np.asarray(restored)) > psnr(source, before) + 0.2


def test_restore_keeps_icc_and_exif_and_gray_stays_gray(photo):
    exif = Image.Exif()
    exif[0x010F] = "nnc test camera"
    data = _jpeg(photo, 20, icc_profile=b"fake-icc-profile", exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as jpeg:
        restored = codec.restore(jpeg)
    assert restored.info["icc_profile"] == b"fake-icc-profile"
    assert Image.Exif().load(restored.info["exif"]) is None or restored.getexif()[0x010F] == "nnc test camera"
    with Image.open(io.BytesIO(_jpeg(photo.convert("L"), 20))) as gray:
        assert codec.restore(gray).mode == "L"


def test_cli_restores_a_file_and_leaves_the_input_untouched(photo, tmp_path):
    source = tmp_path / "old.jpg"
    source.write_bytes(_jpeg(photo, 10))
    before = source.read_bytes()
    result = CliRunner().invoke(main, ["restore", str(source), "-o", str(tmp_path / "old.png")])
    assert result.exit_code == 0, result.output
    assert source.read_bytes() == before
    assert Image.open(tmp_path / "old.png").size == photo.size
    again = CliRunner().invoke(main, ["restore", str(source), "-o", str(source), "--force"])
    assert again.exit_code == 1 and "input" in again.output
    assert source.read_bytes() == before


def test_cli_restores_a_folder_with_jobs(photo, tmp_path):
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(_jpeg(photo, 15))
    (folder / "sub" / "b.jpeg").write_bytes(_jpeg(photo.rotate(90, expand=True), 30))
    (folder / "notes.txt").write_text("not an image")
    result = CliRunner().invoke(main, ["restore", str(folder), "-o", str(tmp_path / "out"), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "a.png", "sub/b.png"]


def test_a_non_jpeg_input_is_a_one_line_error(photo, tmp_path):
    photo.save(tmp_path / "photo.png")
    result = CliRunner().invoke(main, ["restore", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 1
    assert result.output.startswith("Error:") and "not a JPEG" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out.png").exists()


def test_a_jpeg_above_the_quality_restore_helps_is_written_as_decoded(photo, tmp_path):
    from codec.restore import RESTORE_MAX_QUALITY

    high, low = tmp_path / "high.jpg", tmp_path / "low.jpg"
    high.write_bytes(_jpeg(photo, RESTORE_MAX_QUALITY + 1))
    low.write_bytes(_jpeg(photo, RESTORE_MAX_QUALITY))
    result = CliRunner().invoke(main, ["restore", str(high), str(low), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"written as decoded: JPEG quality {RESTORE_MAX_QUALITY + 1} is above {RESTORE_MAX_QUALITY}" \
        in result.output
    assert f"restored (JPEG quality {RESTORE_MAX_QUALITY})" in result.output
    with Image.open(high) as jpeg:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "high.png")), np.asarray(jpeg.convert("RGB")))
    with Image.open(low) as jpeg:
        assert not np.array_equal(np.asarray(Image.open(tmp_path / "out" / "low.png")), np.asarray(jpeg.convert("RGB")))


def test_restore_has_the_pixel_limit_its_error_names(photo, tmp_path):
    (tmp_path / "old.jpg").write_bytes(_jpeg(photo, 10))
    refused = CliRunner().invoke(main, ["restore", str(tmp_path / "old.jpg"), "-o", str(tmp_path / "a.png"),
                                        "--max-pixels", "100"])
    assert refused.exit_code == 1 and "over the limit of 100 (--max-pixels)" in refused.output
    assert not (tmp_path / "a.png").exists()
