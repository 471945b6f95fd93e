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
