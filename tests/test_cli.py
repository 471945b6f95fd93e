"""The nnc command: outputs, overwrite protection, atomic writes, one-line errors and exit codes."""

from __future__ import annotations

import io
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import cli
import codec
from codec import files
from codec.models import RELEASES
from conftest import icc_profile, synthetic_rgb

README = Path(__file__).parents[1] / "README.md"


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
    assert result.exit_code == 0 and f"model_version: {codec.weights.model_version().hex()}" in result.output
    assert "width: 48" in result.output and f"decoder_models: upscale {RELEASES[-1]['upscale']}" in result.output
    assert f"deblock (full-size luma without loop filters) {RELEASES[-1]['deblock_unfiltered']}" in result.output
    assert f"color (thumbnails at 1/2) {RELEASES[-1]['color_fine']}" in result.output
    assert "color_strength: none (stage 3 runs no network on this file)\n" in result.output  # full-size chroma
    result = run("encode", workdir / "a.png", "-o", workdir / "learned.nnc", "-q", "30")
    shown = codec.info((workdir / "learned.nnc").read_bytes())["color_strength"]
    result = run("info", workdir / "learned.nnc")
    assert f"color_strength: Cb {shown[0]}/8, Cr {shown[1]}/8 of the colorizer's correction\n" in result.output
    assert "luma_loop_filters: yes\n" in result.output or "luma_loop_filters: no\n" in result.output
    (workdir / "cut.nnc").write_bytes((workdir / "a.nnc").read_bytes()[:16])  # the header, not the luma
    result = run("info", workdir / "cut.nnc")
    assert result.exit_code == 0 and "luma_loop_filters: unknown (no complete luma section)" in result.output


def test_existing_output_is_kept_without_force(workdir, monkeypatch):
    (workdir / "a.nnc").write_bytes(b"precious")
    with monkeypatch.context() as patch:  # refused before any encoding work, not after it
        patch.setattr(files, "encode_with_report", lambda *args, **kwargs: pytest.fail("encoded anyway"))
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
    commands = [["decode", workdir / "bad.nnc", "-o", workdir / "x.png"]]
    if content is not None:  # info shows the header of a file cut short (test_a_file_cut_in_its_metadata)
        commands.append(["info", workdir / "bad.nnc"])
    for command in commands:
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
        assert "Traceback" not in result.output
    assert not (workdir / "x.png").exists()


def test_unreadable_image_is_an_error(workdir):
    (workdir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = run("encode", workdir / "broken.png", "-o", workdir / "broken.nnc")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot read image")
    (workdir / "notes.txt").write_text("not an image")
    result = run("encode", workdir / "notes.txt", "-o", workdir / "notes.nnc")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "not in an image format nnc reads" in result.output and "<_io" not in result.output


def test_usage_errors_exit_2(workdir):
    assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "0").exit_code == 2
    assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "5", "--bpp", "0.1").exit_code == 2
    assert run("encode", workdir / "missing.png", "-o", workdir / "a.nnc").exit_code == 2


def test_folder_to_folder(workdir):
    result = run("encode", workdir, "-o", workdir / "out", "-q", "20")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (workdir / "out").iterdir()) == [".nnc-batch.jsonl", "a.nnc", "b.nnc"]


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
    image.save(workdir / "m.jpg", exif=exif, icc_profile=icc_profile("RGB"), quality=95)
    run("encode", workdir / "m.jpg", "-o", workdir / "m.nnc")
    run("decode", workdir / "m.nnc", "-o", workdir / "m_out.jpg")
    with Image.open(workdir / "m_out.jpg") as decoded:
        assert decoded.info.get("icc_profile") == icc_profile("RGB") and decoded.getexif()[0x010F] == "TestCam"
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


@pytest.mark.parametrize("address", ["bogus", "tcp://"])
def test_a_cluster_address_that_is_not_one_is_a_one_line_error(workdir, address):
    pytest.importorskip("distributed")
    result = run("encode", workdir, "-o", workdir / "out", "--cluster", address)
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith("Error: cannot reach")


def test_one_file_goes_to_the_cluster_too(workdir, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(codec.batch, "CONNECT_SECONDS", 1)
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "--cluster", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and "Error: cannot reach the Dask scheduler" in result.output
    assert not (workdir / "a.nnc").exists()  # not coded here instead
    piped = CliRunner().invoke(cli.main, ["encode", "-", "-o", str(workdir / "b.nnc"), "--cluster", "tcp://x:1"],
                               input=(workdir / "a.png").read_bytes())
    assert piped.exit_code == 2 and "standard input" in piped.output


def test_a_damaged_batch_manifest_is_read_around_or_refused_in_one_line(workdir):
    (workdir / "out").mkdir()
    (workdir / "out" / files.MANIFEST_NAME).write_bytes(b"\x00\xff not json\n")
    result = run("encode", workdir, "-o", workdir / "out", "-q", "5")
    assert result.exit_code == 0, result.output
    again = run("encode", workdir, "-o", workdir / "out", "-q", "5")  # the rewritten manifest knows both
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output
    (workdir / "other" / files.MANIFEST_NAME).mkdir(parents=True)
    refused = run("encode", workdir / "a.png", workdir / "b.jpg", "-o", workdir / "other")
    assert refused.exit_code == 1 and refused.output.strip() == (
        f"Error: cannot read {workdir / 'other' / files.MANIFEST_NAME}: Is a directory")


def test_a_file_where_a_batch_needs_a_folder_fails_that_file_alone(workdir):
    (workdir / "in" / "sub").mkdir(parents=True)
    (workdir / "a.png").rename(workdir / "in" / "a.png")
    (workdir / "b.jpg").rename(workdir / "in" / "sub" / "b.jpg")
    (workdir / "out").mkdir()
    (workdir / "out" / "sub").write_text("in the way")
    result = run("encode", workdir / "in", "-o", workdir / "out", "-q", "5")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot create the output folder {workdir / 'out' / 'sub'}: a file is in the way" in result.output
    assert (workdir / "out" / "a.nnc").exists() and (workdir / "out" / "sub").read_text() == "in the way"


@pytest.mark.parametrize("command, output", [("encode", "two.nnc"), ("decode", "two.png")])
def test_several_inputs_into_a_file_name_are_refused(workdir, command, output):
    inputs = [workdir / "a.png", workdir / "b.jpg"]
    if command == "decode":
        inputs = [workdir / "a.nnc", workdir / "b.nnc"]
        for source, coded in zip([workdir / "a.png", workdir / "b.jpg"], inputs):
            run("encode", source, "-o", coded, "-q", "5")
    result = run(command, *inputs, "-o", workdir / output)
    assert result.exit_code == 1 and "give a folder (e.g. " in result.output
    assert not (workdir / output).exists()
    for folder in (str(workdir / output) + os.sep, workdir / output):  # a folder of that name: into it
        assert run(command, *inputs, "-o", folder, "--force").exit_code == 0
        assert sorted(path.stem for path in (workdir / output).glob(f"*{Path(output).suffix}")) == ["a", "b"]


def test_baseline_offers_only_stages_with_a_learned_version(workdir):
    assert set(codec.STAGES) == codec.LEARNED_STAGES
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "--baseline", "intra")
    assert result.exit_code == 2 and "'intra' is not one of" in result.output


def test_compare_warns_in_one_line_and_has_the_pixel_limit(workdir):
    pixels = np.dstack([synthetic_rgb(32, 48), np.full((32, 48), 255, np.uint8)])
    pixels[0, 0, 3] = 0
    Image.fromarray(pixels, "RGBA").save(workdir / "alpha.png")
    run("encode", workdir / "alpha.png", "-o", workdir / "alpha.nnc", "-q", "20")
    result = run("compare", workdir / "alpha.png", workdir / "alpha.nnc")
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "Warning: nnc stores no alpha channel: transparency is dropped"
    refused = run("compare", workdir / "alpha.png", workdir / "alpha.nnc", "--max-pixels", "100")
    assert refused.exit_code == 1 and "over the limit of 100 (--max-pixels)" in refused.output


@pytest.mark.parametrize("junk, message", [
    (b"junkjun", "truncated or has bytes appended: the 7 bytes at offset"),  # claims more bytes than follow
    (b"junk" * 100, "fail the CRC of a section: the file is corrupt, or bytes were appended"),
    (b"\x00" + b"\xff" * 20, "are not a section header (field 'length': a varint longer than 10 bytes)")])
def test_bytes_appended_to_a_file_are_not_called_cut_off_metadata(workdir, junk, message):
    run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "20")
    (workdir / "junk.nnc").write_bytes((workdir / "a.nnc").read_bytes() + junk)
    plain = run("decode", workdir / "junk.nnc", "-o", workdir / "junk.png")
    assert plain.exit_code == 1 and message in plain.output and "--partial decodes" in plain.output
    partial = run("decode", workdir / "junk.nnc", "-o", workdir / "junk.png", "--partial")
    assert partial.exit_code == 0 and "the bytes after its last complete section were left out" in partial.output
    assert np.array_equal(np.asarray(Image.open(workdir / "junk.png")), np.asarray(codec.decode(workdir / "a.nnc")))
    assert "not a complete section, cut short or appended" in run("info", workdir / "junk.nnc").output


def test_info_suggests_partial_only_where_the_luma_arrived(workdir):
    run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "20")
    (workdir / "cut.nnc").write_bytes((workdir / "a.nnc").read_bytes()[:20])
    result = run("info", workdir / "cut.nnc")
    assert "truncated: yes: the file is cut short before its luma section is complete: nothing to decode" \
        in result.output
    (workdir / "junk.nnc").write_bytes((workdir / "a.nnc").read_bytes() + b"junkjun")
    assert "truncated: yes: the file ends in bytes that are not a complete section, cut short or appended" \
        in run("info", workdir / "junk.nnc").output


@pytest.mark.parametrize("command", [[], ["encode"], ["decode"], ["info"], ["compare"], ["restore"]])
def test_every_help_shows_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Example: nnc" in result.output


def test_baseline_look_and_threads_reach_the_decoder(workdir, photo):
    photo.save(workdir / "photo.png")
    assert run("encode", workdir / "photo.png", "-o", workdir / "photo.nnc", "-q", "1").exit_code == 0
    assert codec.info((workdir / "photo.nnc").read_bytes())["luma_scale"] > 1  # stage 2 has work to do
    outputs = {}
    for name, options in {"learned": [], "one": ["--threads", "1"], "base": ["--baseline", "upscale"],
                          "perceptual": ["--look", "perceptual"]}.items():
        result = run("decode", workdir / "photo.nnc", "-o", workdir / f"{name}.png", *options)
        assert result.exit_code == 0, result.output
        outputs[name] = np.asarray(Image.open(workdir / f"{name}.png"))
    assert np.array_equal(outputs["learned"], outputs["one"])
    assert not np.array_equal(outputs["learned"], outputs["base"])
    assert not np.array_equal(outputs["learned"], outputs["perceptual"])
    assert run("decode", workdir / "photo.nnc", "-o", workdir / "x.png", "--threads", "0").exit_code == 2


def test_baseline_switch_is_accepted_and_checked(workdir):
    run("encode", workdir / "a.png", "-o", workdir / "plain.nnc", "-q", "40")
    result = run("encode", workdir / "a.png", "-o", workdir / "base.nnc", "-q", "40", "--baseline", "upscale",
                 "--baseline", "color")
    assert result.exit_code == 0
    base, plain = (codec.info((workdir / f"{name}.nnc").read_bytes()) for name in ("base", "plain"))
    assert base["classical_color"] and base["color_strength"] is None  # the file says stage 3 runs classical
    assert not plain["classical_color"] and plain["color_strength"] is not None
    assert run("decode", workdir / "base.nnc", "-o", workdir / "b.png", "--baseline", "deblock").exit_code == 0
    assert run("encode", workdir / "a.png", "-o", workdir / "x.nnc", "--baseline", "bogus").exit_code == 2
    with pytest.raises(ValueError, match="unknown stage"):
        codec.decode((workdir / "base.nnc").read_bytes(), baseline=("bogus",))


# Data loss and damage

def test_photos_whose_names_clash_are_all_kept(workdir):
    Image.fromarray(synthetic_rgb(24, 24, seed=7)).save(workdir / "a.jpg", quality=95)  # beside a.png
    result = run("encode", workdir, "-o", workdir / "out", "-q", "30")
    assert result.exit_code == 0, result.output
    out = workdir / "out"
    assert sorted(p.name for p in out.glob("*.nnc")) == ["a.jpg.nnc", "a.png.nnc", "b.nnc"]
    assert codec.decode((out / "a.jpg.nnc").read_bytes()).size == (24, 24)
    assert codec.decode((out / "a.png.nnc").read_bytes()).size == (48, 32)
    again = run("encode", workdir, "-o", out, "-q", "30")
    assert again.exit_code == 0 and "0 done, 3 skipped" in again.output


def test_clashes_left_are_refused_before_any_work(tmp_path):
    for folder in ("d1", "d2"):
        (tmp_path / folder).mkdir()
        Image.fromarray(synthetic_rgb(8, 8)).save(tmp_path / folder / "x.png")
    result = run("encode", tmp_path / "d1", tmp_path / "d2", "-o", tmp_path / "out")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "overwrite each other" in result.output and "d1" in result.output and "d2" in result.output
    assert not (tmp_path / "out").exists()


def test_resume_knows_exactly_what_it_wrote(workdir, monkeypatch):
    out = workdir / "out"
    assert run("encode", workdir, "-o", out, "-q", "30").exit_code == 0
    first = (out / "a.nnc").read_bytes()
    assert "0 done, 2 skipped" in run("encode", workdir, "-o", out, "-q", "30").output
    requality = run("encode", workdir, "-o", out, "-q", "70")  # its own outputs, other options: coded again
    assert requality.exit_code == 0 and "2 done, 0 skipped" in requality.output
    assert (out / "a.nnc").read_bytes() != first
    Image.fromarray(synthetic_rgb(32, 48, seed=9)).save(workdir / "a.png")  # another photo, same name
    assert "1 done, 1 skipped" in run("encode", workdir, "-o", out, "-q", "70").output
    monkeypatch.setattr(files, "__version__", "99.0")  # another nnc version
    assert "2 done, 0 skipped" in run("encode", workdir, "-o", out, "-q", "70").output
    (out / "b.nnc").write_bytes(b"not written by nnc")
    kept = run("encode", workdir, "-o", out, "-q", "70")
    assert kept.exit_code == 1 and "1 kept" in kept.output and "--force" in kept.output
    assert (out / "b.nnc").read_bytes() == b"not written by nnc"
    forced = run("encode", workdir, "-o", out, "-q", "70", "--force")
    assert forced.exit_code == 0 and (out / "b.nnc").read_bytes()[:3] == b"NNC"


def test_outputs_are_readable_by_others(workdir):
    previous = os.umask(0o022)
    try:
        assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc").exit_code == 0
        assert run("decode", workdir / "a.nnc", "-o", workdir / "a_out.png").exit_code == 0
    finally:
        os.umask(previous)
    assert all((workdir / name).stat().st_mode & 0o777 == 0o644 for name in ("a.nnc", "a_out.png"))


# The command line does what it says

def test_a_target_size_search_reports_each_quality_it_tries(workdir):
    messages: list[str] = []
    options = files.EncodeOptions(target_size=400)
    result = files.encode_file((str(workdir / "a.png"), str(workdir / "a.nnc")), options, progress=messages.append)
    assert result.status == "done"
    tried = [int(m.split("quality ")[1].split()[0]) for m in messages if "gives" in m]
    assert tried[:2] == [1, 51] and len(tried) >= 5  # bisection over 1..100, each step shown
    assert codec.info((workdir / "a.nnc").read_bytes())["bytes"] <= 400


def test_a_plain_encode_reports_what_it_codes(workdir):
    """Long single-file work shows progress: each candidate coded and network run is reported."""
    messages: list[str] = []
    result = files.encode_file((str(workdir / "a.png"), str(workdir / "a.nnc")), files.EncodeOptions(quality=30),
                               progress=messages.append)
    assert result.status == "done"
    assert any(m.startswith("quality 30: coding luma x1 at x265 quality") for m in messages), messages
    assert any("coding color" in m for m in messages) and any("upscaling" in m or "colorizing" in m for m in messages)


def test_a_decode_reports_each_stage(workdir):
    assert run("encode", workdir / "a.png", "-o", workdir / "a.nnc").exit_code == 0
    messages: list[str] = []
    result = files.decode_file((str(workdir / "a.nnc"), str(workdir / "a.out.png")), files.DecodeOptions(),
                               progress=messages.append)
    assert result.status == "done" and [m.split(":")[0] for m in messages] == [f"stage {n}" for n in (1, 2, 3, 4)]


def test_one_input_into_a_folder(workdir):
    result = run("encode", workdir / "a.png", "-o", str(workdir / "new") + os.sep)
    assert result.exit_code == 0, result.output
    assert (workdir / "new").is_dir() and (workdir / "new" / "a.nnc").is_file()
    (workdir / "existing").mkdir()
    assert run("encode", workdir / "a.png", "-o", workdir / "existing").exit_code == 0
    assert run("encode", workdir / "a.png", "-o", workdir / "existing", "--force").exit_code == 0
    assert run("decode", workdir / "new" / "a.nnc", "-o", workdir / "existing", "--format", "jpg").exit_code == 0
    assert sorted(p.name for p in (workdir / "existing").iterdir()) == ["a.jpg", "a.nnc"]


def test_wrong_output_extension_is_refused(workdir):
    result = run("encode", workdir / "a.png", "-o", workdir / "oops.jpg")
    assert result.exit_code == 2 and "oops.jpg does not end in .nnc" in result.output
    assert not (workdir / "oops.jpg").exists()
    assert run("decode", workdir / "a.png", "-o", workdir / "x.unknown").exit_code == 2


def test_decode_writes_heic(workdir, monkeypatch):
    import pillow_heif

    run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "-q", "60")
    for registry in ("EXTENSION", "SAVE", "OPEN"):  # as in a fresh process, before any HEIC was opened
        monkeypatch.setattr(Image, registry, {key: value for key, value in getattr(Image, registry).items()
                                              if value != "HEIF" and key != "HEIF"})
    result = run("decode", workdir / "a.nnc", "-o", workdir / "a.heic")
    assert result.exit_code == 0, result.output
    pillow_heif.register_heif_opener()
    with Image.open(workdir / "a.heic") as decoded:
        assert decoded.format == "HEIF" and decoded.size == (48, 32)


def test_output_folder_that_cannot_be_made_is_one_error_line(workdir):
    (workdir / "file").write_bytes(b"a file, not a folder")
    for inputs, output in (([workdir / "a.png"], str(workdir / "file" / "sub") + os.sep),
                           ([workdir], workdir / "file" / "sub")):
        result = run("encode", *inputs, "-o", output)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output == (f"Error: cannot create the output folder {workdir / 'file' / 'sub'}: "
                                 "a file is in the way\n")


def test_unwritable_target_error_names_the_users_path(workdir, monkeypatch):
    import tempfile

    def refuse(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k2j3h4" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc")
    assert result.exit_code == 1 and result.output == f"Error: [Errno 13] Permission denied: '{workdir / 'a.nnc'}'\n"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_error_line(workdir):
    (workdir / "locked").mkdir()
    (workdir / "locked").chmod(0o555)
    try:
        result = run("encode", workdir / "a.png", "-o", workdir / "locked" / "a.nnc")
    finally:
        (workdir / "locked").chmod(0o755)
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert str(workdir / "locked" / "a.nnc") in result.output and ".tmp" not in result.output


def test_unknown_batch_format_is_a_usage_error_before_any_work(workdir):
    run("encode", workdir, "-o", workdir / "coded")
    result = run("decode", workdir / "coded", "-o", workdir / "decoded", "--format", "xyz")
    assert result.exit_code == 2 and "--format" in result.output and "xyz" in result.output
    assert not (workdir / "decoded").exists()


def test_dash_is_standard_input_and_output(workdir):
    encoded = CliRunner().invoke(cli.main, ["encode", "-", "-o", "-", "-q", "40"],
                                 input=(workdir / "a.png").read_bytes())
    assert encoded.exit_code == 0, encoded.output
    assert encoded.stdout_bytes[:3] == b"NNC" and "bpp" in encoded.stderr  # the summary stays off stdout
    assert codec.decode(encoded.stdout_bytes).size == (48, 32)
    decoded = CliRunner().invoke(cli.main, ["decode", "-", "-o", "-", "--format", "jpg"], input=encoded.stdout_bytes)
    assert decoded.exit_code == 0 and "48x32" in decoded.stderr
    with Image.open(io.BytesIO(decoded.stdout_bytes)) as image:
        assert image.format == "JPEG" and image.size == (48, 32)
    to_file = CliRunner().invoke(cli.main, ["decode", "-", "-o", str(workdir / "piped.png")],
                                 input=encoded.stdout_bytes)
    assert to_file.exit_code == 0 and Image.open(workdir / "piped.png").size == (48, 32)


def test_binary_output_is_never_sent_to_a_terminal(workdir, monkeypatch):
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: True)
    for command in (["encode", str(workdir / "a.png"), "-o", "-"], ["decode", "-", "-o", "-", "--format", "png"]):
        result = CliRunner().invoke(cli.main, command, input=b"NNC")
        assert result.exit_code == 2 and "terminal" in result.stderr and result.stdout_bytes == b""


def test_encode_takes_max_pixels(workdir, monkeypatch):
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "--max-pixels", "100")
    assert result.exit_code == 1 and "over the limit of 100" in result.output and "--max-pixels" in result.output
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # as a 100 MP photo against Pillow's default limit
    result = run("encode", workdir / "a.png", "-o", workdir / "a.nnc", "--max-pixels", "2000")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and Image.MAX_IMAGE_PIXELS == 500


def test_animated_input_warns_that_only_one_frame_is_coded(workdir):
    frames = [Image.fromarray(synthetic_rgb(16, 16, seed=seed)) for seed in (1, 2, 3)]
    frames[0].save(workdir / "anim.gif", save_all=True, append_images=frames[1:])
    result = run("encode", workdir / "anim.gif", "-o", workdir / "anim.nnc")
    assert result.exit_code == 0 and "Warning: the image has 3 frames: nnc codes only frame 1" in result.output


def test_a_file_cut_in_its_metadata(workdir):
    from codec import format

    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.fromarray(synthetic_rgb(32, 48)).save(workdir / "m.jpg", exif=exif, quality=95)
    run("encode", workdir / "m.jpg", "-o", workdir / "m.nnc", "-q", "60")
    data = (workdir / "m.nnc").read_bytes()
    assert list(format.parse_container(data).sections)[-1] == "metadata"
    (workdir / "cut.nnc").write_bytes(data[:-3])
    plain = run("decode", workdir / "cut.nnc", "-o", workdir / "cut.png")
    assert plain.exit_code == 1 and "truncated" in plain.output and "--partial" in plain.output
    result = run("decode", workdir / "cut.nnc", "-o", workdir / "cut.png", "--partial")
    assert result.exit_code == 0 and "grayscale" not in result.output and "metadata was cut off" in result.output
    assert Image.open(workdir / "cut.png").mode == "RGB"
    info = run("info", workdir / "cut.nnc")
    assert info.exit_code == 0 and "width: 48" in info.output and "truncated: yes" in info.output
    assert "truncated: no" in run("info", workdir / "m.nnc").output


# README snippets run as written

def _readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_python_snippet_runs_as_written(tmp_path, monkeypatch, photo):
    photo.save(tmp_path / "photo.jpg", quality=90)
    monkeypatch.chdir(tmp_path)
    blocks = _readme_blocks("python")
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    with Image.open(tmp_path / "photo.png") as decoded:
        assert decoded.size == photo.size


def test_readme_commands_run_as_written(tmp_path, monkeypatch, photo):
    """The `nnc` lines of the README's "Use" section, in order (a --cluster line needs a scheduler)."""
    photo.save(tmp_path / "photo.jpg", quality=90)
    (tmp_path / "photos").mkdir()
    for seed in (1, 2):
        Image.fromarray(synthetic_rgb(24, 32, seed=seed)).save(tmp_path / "photos" / f"{seed}.jpg", quality=90)
    data = codec.encode(photo, quality=40)
    (tmp_path / "cut.nnc").write_bytes(data[: codec.info(data)["sections"]["luma"] + 20])  # cut in the hints
    monkeypatch.chdir(tmp_path)
    use = README.read_text(encoding="utf-8").split("## Use", 1)[1].split("\n## ", 1)[0]
    commands = [shlex.split(line, comments=True) for block in re.findall(r"```sh\n(.*?)```", use, re.DOTALL)
                for line in block.splitlines()]
    commands = [words for words in commands if words and words[0] == "nnc" and "--cluster" not in words]
    assert len(commands) >= 10
    for words in commands:
        arguments, redirects = words[1:], {}
        for sign in ("<", ">"):
            if sign in arguments:
                at = arguments.index(sign)
                redirects[sign] = Path(arguments.pop(at + 1))
                arguments.pop(at)
        stdin = redirects["<"].read_bytes() if "<" in redirects else None
        result = CliRunner().invoke(cli.main, arguments, input=stdin)
        assert result.exit_code == 0, f"{shlex.join(words)}: {result.output}"
        if ">" in redirects:
            redirects[">"].write_bytes(result.stdout_bytes)
    with Image.open(tmp_path / "copy.jpg") as piped:  # written by the `- -o -` line
        assert piped.format == "JPEG" and piped.size == photo.size
