"""File jobs: output planning (names, clashes), atomic writes (mode, errors) and the batch manifest."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from PIL import Image

from codec import NncError, files
from codec.files import BatchManifest, EncodeOptions, OutputExistsError, plan_jobs, write_atomically
from conftest import synthetic_rgb


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_names_that_clash_keep_their_source_extension(tmp_path):
    for name in ("IMG_0001.HEIC", "IMG_0001.JPG", "other.png", "sub/IMG_0001.png", "sub/img_0002.png",
                 "sub/IMG_0002.jpg"):
        _touch(tmp_path / "in" / name)
    jobs, many = plan_jobs([str(tmp_path / "in")], str(tmp_path / "out"), ".nnc", files.IMAGE_SUFFIXES)
    targets = {Path(source).relative_to(tmp_path / "in").as_posix(): Path(target).relative_to(tmp_path / "out")
               .as_posix() for source, target in jobs}
    assert many and targets == {
        "IMG_0001.HEIC": "IMG_0001.HEIC.nnc", "IMG_0001.JPG": "IMG_0001.JPG.nnc", "other.png": "other.nnc",
        "sub/IMG_0001.png": "sub/IMG_0001.nnc",  # another folder: no clash
        "sub/IMG_0002.jpg": "sub/IMG_0002.jpg.nnc", "sub/img_0002.png": "sub/img_0002.png.nnc",  # case-blind disks
    }


def test_clashes_the_extension_cannot_resolve_are_refused(tmp_path):
    sources = [str(_touch(tmp_path / folder / "x.png")) for folder in ("d1", "d2")]
    with pytest.raises(NncError, match="overwrite each other") as error:
        plan_jobs([str(tmp_path / "d1"), str(tmp_path / "d2")], str(tmp_path / "out"), ".nnc", {".png"})
    assert all(source in str(error.value) for source in sources)
    # the same file given twice is one job, not a clash
    jobs, _ = plan_jobs([str(tmp_path / "d1"), sources[0]], str(tmp_path / "out"), ".nnc", {".png"})
    assert len(jobs) == 1


def test_an_output_is_never_its_own_input(tmp_path):
    source = _touch(tmp_path / "scans" / "a.jpg")
    with pytest.raises(NncError, match="its own input"):
        plan_jobs([str(tmp_path / "scans")], str(tmp_path / "scans"), ".jpg", {".jpg"})
    with pytest.raises(NncError, match="its own input"):
        plan_jobs([str(source)], str(tmp_path / "scans"), ".jpg", {".jpg"})


def test_one_input_into_a_folder(tmp_path):
    source = str(_touch(tmp_path / "a.png"))
    (tmp_path / "existing").mkdir()
    for output in (str(tmp_path / "new") + "/", str(tmp_path / "existing")):
        assert plan_jobs([source], output, ".nnc", {".png"}) == ([(source, str(Path(output) / "a.nnc"))], False)
    assert plan_jobs([source], str(tmp_path / "b.nnc"), ".nnc", {".png"}) == ([(source, str(tmp_path / "b.nnc"))],
                                                                              False)


def test_standard_streams_take_one_file(tmp_path):
    source = str(_touch(tmp_path / "a.png"))
    assert plan_jobs(["-"], "-", ".nnc", {".png"}) == ([("-", "-")], False)
    with pytest.raises(NncError, match="standard input"):
        plan_jobs(["-", source], str(tmp_path / "out"), ".nnc", {".png"})
    with pytest.raises(NncError, match="standard output"):
        plan_jobs([str(tmp_path)], "-", ".nnc", {".png"})
    with pytest.raises(NncError, match="output file"):
        plan_jobs(["-"], str(tmp_path) + "/", ".nnc", {".png"})


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_of_a_plain_write(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_atomically(tmp_path / "a.nnc", b"data")
        save = lambda name: Image.new("L", (2, 2)).save(name, format="PNG")  # noqa: E731
        write_atomically(tmp_path / "a.png", save=save)
    finally:
        os.umask(previous)
    for name in ("a.nnc", "a.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_replaced_output_keeps_its_mode(tmp_path):
    (tmp_path / "a.nnc").write_bytes(b"old")
    (tmp_path / "a.nnc").chmod(0o640)
    write_atomically(tmp_path / "a.nnc", b"new", force=True)
    assert (tmp_path / "a.nnc").read_bytes() == b"new" and (tmp_path / "a.nnc").stat().st_mode & 0o777 == 0o640


def test_outputs_are_written_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    """FAT and exFAT (SD cards, USB sticks) refuse os.link: the output is still written, and an
    existing file is still never replaced without force."""
    def refuse(source, target):
        raise PermissionError(errno.EPERM, "Operation not permitted", source, target)

    def appears_meanwhile(source, target):
        Path(target).write_bytes(b"someone else's")
        refuse(source, target)

    monkeypatch.setattr(files.os, "link", refuse)
    write_atomically(tmp_path / "a.nnc", b"data")
    assert (tmp_path / "a.nnc").read_bytes() == b"data"
    monkeypatch.setattr(files.os, "link", appears_meanwhile)
    with pytest.raises(OutputExistsError):
        write_atomically(tmp_path / "b.nnc", b"other")
    assert (tmp_path / "b.nnc").read_bytes() == b"someone else's"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.nnc", "b.nnc"]


def test_write_errors_name_the_output_not_the_temp_file(tmp_path, monkeypatch):
    def refuse(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "k2j3h4" + suffix))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as error:
        write_atomically(tmp_path / "a.nnc", b"data")
    assert error.value.filename == str(tmp_path / "a.nnc") and ".tmp" not in str(error.value)


def test_manifest_tells_its_own_outputs_from_others(tmp_path, monkeypatch):
    source = tmp_path / "a.png"
    Image.fromarray(synthetic_rgb(8, 8)).save(source)
    out = tmp_path / "out"
    out.mkdir()
    target = str(out / "a.nnc")
    manifest = BatchManifest(out, "encode", EncodeOptions(quality=30))
    assert manifest.state(str(source), target) == "new"
    (out / "a.nnc").write_bytes(b"coded")
    manifest.add(str(source), target)
    manifest.compact()

    def state(options=None):
        return BatchManifest(out, "encode", options or EncodeOptions(quality=30)).state(str(source), target)

    assert state() == "same"
    assert state(EncodeOptions(quality=30, threads=2, max_pixels=10**9)) == "same"  # same bytes either way
    assert state(EncodeOptions(quality=31)) == "stale"
    assert state(EncodeOptions(quality=30, strip=True)) == "stale"
    monkeypatch.setattr(files, "__version__", "99.0")
    assert state() == "stale"
    monkeypatch.undo()
    Image.fromarray(synthetic_rgb(8, 8, seed=1)).save(source)  # another photo under the same name
    assert state() == "stale"
    (out / "a.nnc").write_bytes(b"changed by someone else")
    assert state() == "foreign"
    (out / "b.nnc").write_bytes(b"never written by nnc")
    assert BatchManifest(out, "encode", EncodeOptions()).state(str(source), str(out / "b.nnc")) == "foreign"


def test_manifest_survives_a_line_cut_by_a_crash(tmp_path):
    source = _touch(tmp_path / "a.png")
    out = tmp_path / "out"
    _touch(out / "a.nnc")
    manifest = BatchManifest(out, "encode", EncodeOptions())
    manifest.add(str(source), str(out / "a.nnc"))
    with open(out / files.MANIFEST_NAME, "a") as log:
        log.write('{"output": "b.nn')
    assert BatchManifest(out, "encode", EncodeOptions()).state(str(source), str(out / "a.nnc")) == "same"
    assert (out / files.MANIFEST_NAME).read_text().endswith("}\n")


def test_a_folder_walk_finds_every_picture_format_pillow_reads(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.tga", "b.jp2", "c.qoi", "d.pnm", "e.txt"):
        (tmp_path / "in" / name).write_bytes(b"")
    jobs, many = plan_jobs([str(tmp_path / "in")], str(tmp_path / "out"), ".nnc", files.IMAGE_SUFFIXES)
    assert many and sorted(Path(source).name for source, _ in jobs) == ["a.tga", "b.jp2", "c.qoi", "d.pnm"]
