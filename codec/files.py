"""File-level jobs: read an image or an .nnc file, code it, write the result atomically.

Each job returns a FileResult instead of raising, so a batch goes on past a bad file. The jobs are
plain picklable functions: they run the same in-process, in a process pool or on a Dask cluster.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import decode, encode_with_report, format, open_image
from .errors import NncError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".ppm", ".pgm", ".heic", ".heif",
                  ".gif", ".avif"}


class OutputExistsError(NncError):
    """The output file exists and overwriting was not asked for."""


@dataclass(frozen=True)
class EncodeOptions:
    """Options of ``codec.encode_with_report`` (see there)."""

    quality: int | None = None
    target_size: int | None = None
    bpp: float | None = None
    strip: bool = False
    baseline: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecodeOptions:
    """Options of ``codec.decode`` (see there)."""

    max_pixels: int = format.DEFAULT_MAX_PIXELS
    partial: bool = False
    baseline: tuple[str, ...] = ()


@dataclass
class FileResult:
    """Outcome of one file job: status "done", "skipped" (output already there) or "failed"."""

    source: str
    target: str
    status: str
    message: str
    warnings: list[str] = field(default_factory=list)


def write_atomically(path: Path, data: bytes | None = None, save: Callable[[str], None] | None = None,
                     force: bool = False) -> None:
    """Write ``data`` (or call ``save(temp_path)``) to a temp file beside ``path``, then move it in place.

    Without ``force`` an existing ``path`` is never replaced, even one that appears meanwhile
    (OutputExistsError). On any failure the temp file is removed and ``path`` is untouched."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists (use --force to overwrite)")
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as temp_file:
            if data is not None:
                temp_file.write(data)
        if save is not None:
            save(temp_name)
        if force:
            os.replace(temp_name, path)
        else:
            os.link(temp_name, path)
            os.unlink(temp_name)
    except FileExistsError:
        os.unlink(temp_name)
        raise OutputExistsError(f"{path} exists (use --force to overwrite)") from None
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def output_format(path: Path) -> str:
    """Pillow's format name for an output path's extension; NncError for an unknown extension."""
    Image.init()
    image_format = Image.EXTENSION.get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise NncError(f"unknown output format '{path.suffix}': use .png, .jpg, .webp, .tif, ...")
    return image_format


def _run_job(source: str, target: str, skip_existing: bool, force: bool, job: Callable[[Path], str]) -> FileResult:
    if skip_existing and not force and Path(target).exists():
        return FileResult(source, target, "skipped", f"{target} exists, skipped")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            message = job(Path(target))
            status = "done"
        except (NncError, OSError) as error:
            message, status = str(error).splitlines()[0] if str(error) else type(error).__name__, "failed"
        except Exception as error:  # a bug: still one line, and the batch goes on
            message, status = f"internal error: {type(error).__name__}: {error}", "failed"
    return FileResult(source, target, status, message, [str(w.message) for w in caught])


def encode_file(job: tuple[str, str], options: EncodeOptions, force: bool = False,
                skip_existing: bool = False) -> FileResult:
    """Encode the image at job[0] into the .nnc file job[1]."""
    source, target = job

    def run(path: Path) -> str:
        image = open_image(source)
        data, report = encode_with_report(image, options.quality, options.target_size, options.bpp,
                                          baseline=options.baseline, strip=options.strip)
        write_atomically(path, data, force=force)
        return (f"{source} -> {target}: {report.bytes} bytes, {8 * report.bytes / (image.width * image.height):.4f} "
                f"bpp, PSNR {report.psnr:.2f} dB (quality {report.quality}, luma x{report.luma_scale}, "
                f"{report.hint_layout} hints)")

    return _run_job(source, target, skip_existing, force, run)


def decode_file(job: tuple[str, str], options: DecodeOptions, force: bool = False,
                skip_existing: bool = False) -> FileResult:
    """Decode the .nnc file job[0] into the image file job[1] (format from its extension)."""
    source, target = job

    def run(path: Path) -> str:
        image_format = output_format(path)
        image = decode(Path(source).read_bytes(), options.max_pixels, options.baseline, options.partial)
        metadata = {key: image.info[key] for key in ("icc_profile", "exif") if key in image.info}
        write_atomically(path, save=lambda name: image.save(name, format=image_format, **metadata), force=force)
        note = " (partial file: grayscale, the color hints were cut off)" if image.info.get("nnc_partial") else ""
        return f"{source} -> {target}: {image.width}x{image.height} {image.mode}{note}"

    return _run_job(source, target, skip_existing, force, run)


def plan_jobs(inputs: list[str], output: str, target_suffix: str,
              source_suffixes: set[str]) -> tuple[list[tuple[str, str]], bool]:
    """(source, target) pairs, and whether ``output`` is a folder (several inputs or a folder input).

    Folders are walked recursively for files with ``source_suffixes``; their tree is kept under
    ``output``. A single file input maps to ``output`` itself."""
    many = len(inputs) != 1 or Path(inputs[0]).is_dir()
    if not many:
        return [(inputs[0], output)], False
    jobs = []
    for name in inputs:
        path = Path(name)
        files = ([(file, file.relative_to(path)) for file in sorted(path.rglob("*"))
                  if file.is_file() and file.suffix.lower() in source_suffixes] if path.is_dir()
                 else [(path, Path(path.name))])
        jobs += [(str(file), str((Path(output) / relative).with_suffix(target_suffix))) for file, relative in files]
    return jobs, True
