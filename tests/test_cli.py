"""The nnc command: outputs, overwrite protection, atomic writes, one-line errors and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import cli
from conftest import synthetic_rgb


@pytest.fixture
def workdir(tmp_path):
    Image.fromarray(synthetic_rgb(32, 48)).save(tmp_path / "a.png")
    Image.fromarray(synthetic_rgb(20, 30, seed=2)).save(tmp_path / "b.jpg", quality=95)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli.main, [str(arg) for arg in args])


def test_encode_decode_info(workdir):
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "50")
    assert result.exit_code == 0 and "bpp" in result.output and "PSNR" in result.output
    result = run("decode", workdir / "a.nnc", "-o", workdir / "a_out.png")
    assert result.exit_code == 0
    assert Image.open(workdir / "a_out.png").size == (48, 32)
    result = run("info", workdir / "a.nnc")
    assert result.exit_code == 0 and "model_version: e3b0c442" in result.output and "width: 48" in result.output


def test_existing_output_is_kept_without_force(workdir):
    (workdir / "a.nnc").write_bytes(b"precious")
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc")
    assert result.exit_code == 1 and "--force" in result.output
    assert (workdir / "a.nnc").read_bytes() == b"precious"
    assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "--force").exit_code == 0
    assert (workdir / "a.nnc").read_bytes()[:3] == b"NNC"


def test_failed_write_leaves_no_file(workdir, monkeypatch):
    run("encode", workdir / "a.png", "-o", workdir / "a.nnc")

    def failing_save(self, fp, format=None, **params):
        with open(fp, "wb") as partial:
            partial.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    result = run("decode", workdir / "a.nnc", "-o", workdir / "out.png")
    assert result.exit_code == 1 and "No space left" in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["a.nnc", "a.png", "b.jpg"]


@pytest.mark.parametrize("content", [b"", b"NNC", b"garbage that is not an nnc file", None])
def test_bad_files_give_one_line_errors(workdir, content):
    good = (run("encode", workdir / "a.png", "-o", workdir / "a.nnc"), (workdir / "a.nnc").read_bytes())[1]
    data = good[: len(good) // 2] if content is None else content
    (workdir / "bad.nnc").write_bytes(data)
    for command in (["decode", workdir / "bad.nnc", "-o", workdir / "x.png"], ["info", workdir / "bad.nnc"]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
        assert "Traceback" not in result.output
    assert not (workdir / "x.png").exists()


def test_unreadable_image_is_an_error(workdir):
    (workdir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = run("encode", workdir / "broken.png", "-o", workdir / "broken.nnc")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot read image")


def test_usage_errors_exit_2(workdir):
    assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "0").exit_code == 2
    assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "5", "--bpp", "0.1").exit_code == 2
    assert run("encode", workdir / "missing.png", "-o", workdir / "a.nnc").exit_code == 2


def test_folder_to_folder(workdir):
    result = run("encode", workdir, "-o", workdir / "out", "-q", "20")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["a.nnc", "b.nnc"]


def test_decode_never_touches_the_input(workdir):
    run("encode", workdir / "a.png", "-o", workdir / "a.nnc")
    before = (workdir / "a.nnc").read_bytes()
    run("decode", workdir / "a.nnc", "-o", workdir / "a.jpg")
    assert (workdir / "a.nnc").read_bytes() == before
    assert np.asarray(Image.open(workdir / "a.jpg")).shape == (32, 48, 3)


def test_full_disk_during_encode_leaves_no_file(workdir, monkeypatch):
    import os

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, descriptor, mode):
            self.file = real_fdopen(descriptor, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            self.file.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", FullDisk)
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc")
    assert result.exit_code == 1 and result.output == "Error: [Errno 28] No space left on device\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["a.png", "b.jpg"]


def test_unwritable_folder_is_a_one_line_error(workdir, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(workdir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc")
    assert result.exit_code == 1 and result.output.startswith("Error: [Errno 13] Permission denied")
    assert not (workdir / "a.nnc").exists()


def test_max_pixels_option_refuses_large_files(workdir):
    run("encode", workdir / "a.png", "-o", workdir / "a.nnc")
    result = run("decode", workdir / "a.nnc", "-o", workdir / "a_out.png", "--max-pixels", "100")
    assert result.exit_code == 1 and "over the limit of 100" in result.output
    assert run("info", workdir / "a.nnc", "--max-pixels", "100").exit_code == 1


def test_batch_keeps_the_tree_resumes_and_reports_failures(workdir):
    (workdir / "sub").mkdir()
    Image.fromarray(synthetic_rgb(16, 24, seed=5)).save(workdir / "sub" / "c.png")
    (workdir / "sub" / "broken.png").write_bytes(b"not a png")
    result = run("encode", workdir, "-o", workdir / "out", "-q", "30", "--jobs", "2")
    assert result.exit_code == 1 and "1 of 4 files failed" in result.output
    assert "Error: " in result.output and "broken.png" in result.output
    assert sorted(str(p.relative_to(workdir / "out")) for p in (workdir / "out").rglob("*.nnc")) == [
        "a.nnc", "b.nnc", "sub/c.nnc"]
    again = run("encode", workdir, "-o", workdir / "out", "-q", "30")
    assert "0 done, 3 skipped" in again.output  # an interrupted batch resumes where it stopped
    decoded = run("decode", workdir / "out", "-o", workdir / "png", "--jobs", "2")
    assert decoded.exit_code == 0, decoded.output
    assert sorted(str(p.relative_to(workdir / "png")) for p in (workdir / "png").rglob("*.png")) == [
        "a.png", "b.png", "sub/c.png"]


def test_partial_decode_on_the_command_line(workdir):
    from codec import format

    run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "60")
    data = (workdir / "a.nnc").read_bytes()
    (workdir / "cut.nnc").write_bytes(data[: len(data) - format.parse_container(data).section_sizes["hints"] + 2])
    assert run("decode", workdir / "cut.nnc", "-o", workdir / "cut.png").exit_code == 1
    result = run("decode", workdir / "cut.nnc", "-o", workdir / "cut.png", "--partial")
    assert result.exit_code == 0 and "partial file: grayscale" in result.output
    assert Image.open(workdir / "cut.png").mode == "L"


def test_compare_prints_quality_of_a_file(workdir):
    Image.fromarray(synthetic_rgb(200, 180)).save(workdir / "big.png")
    run("encode", workdir / "big.png", "-o", workdir / "big.nnc", "-q", "50")
    result = run("compare", workdir / "big.png", workdir / "big.nnc")
    assert result.exit_code == 0 and "bpp" in result.output and "MS-SSIM 0.9" in result.output
    assert run("compare", workdir / "a.png", workdir / "big.nnc").exit_code == 1


def test_metadata_written_back_unless_stripped(workdir):
    image = Image.fromarray(synthetic_rgb(12, 12))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    image.save(workdir / "m.jpg", exif=exif, icc_profile=b"icc" * 50, quality=95)
    run("encode", workdir / "m.jpg", "-o", workdir / "m.nnc")
    run("decode", workdir / "m.nnc", "-o", workdir / "m_out.jpg")
    with Image.open(workdir / "m_out.jpg") as decoded:
        assert decoded.info.get("icc_profile") == b"icc" * 50 and decoded.getexif()[0x010F] == "TestCam"
    run("encode", workdir / "m.jpg", "-o", workdir / "s.nnc", "--strip")
    run("decode", workdir / "s.nnc", "-o", workdir / "s_out.png")
    with Image.open(workdir / "s_out.png") as decoded:
        assert "icc_profile" not in decoded.info and not decoded.getexif()


def test_dask_cluster_gives_the_same_files(workdir):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        result = run("encode", workdir, "-o", workdir / "on_cluster", "-q", "25", "--cluster", address)
    assert result.exit_code == 0, result.output
    run("encode", workdir, "-o", workdir / "local", "-q", "25")
    for name in ("a.nnc", "b.nnc"):
        assert (workdir / "on_cluster" / name).read_bytes() == (workdir / "local" / name).read_bytes()


def test_unreachable_cluster_is_a_one_line_error(workdir):
    pytest.importorskip("distributed")
    result = run("encode", workdir, "-o", workdir / "out", "--cluster", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith("Error: cannot reach")


@pytest.mark.parametrize("command", [[], ["encode"], ["decode"], ["info"], ["compare"]])
def test_every_help_shows_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Example: nnc" in result.output


def test_baseline_switch_is_accepted_and_checked(workdir):
    run("encode", workdir / "a.png", "-o", workdir / "plain.nnc", "-q", "40")
    result = run("encode", workdir / "a.png", "-o", workdir / "base.nnc", "-q", "40", "--baseline", "upscale",
                 "--baseline", "color")
    assert result.exit_code == 0
    # v0.1 has no learned stage: every stage already runs its baseline, so the files are the same
    assert (workdir / "base.nnc").read_bytes() == (workdir / "plain.nnc").read_bytes()
    assert run("decode", workdir / "base.nnc", "-o", workdir / "b.png", "--baseline", "deblock").exit_code == 0
    assert run("encode", workdir / "a.png", "-o", workdir / "x.nnc", "--baseline", "bogus").exit_code == 2
    with pytest.raises(ValueError, match="unknown stage"):
        import codec

        codec.decode((workdir / "base.nnc").read_bytes(), baseline=("bogus",))
