"""The ``nnc`` command: a thin click layer over the codec API."""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import click

import codec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".ppm", ".pgm", ".heic", ".heif",
                  ".gif"}


MAX_PIXELS_OPTION = click.option(
    "--max-pixels", type=click.IntRange(1), default=codec.format.DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse files claiming more pixels than this (decompression-bomb guard).")


def _write_atomically(path: Path, data: bytes | None, force: bool,
                      save: Callable[[str], None] | None = None) -> None:
    """Write ``data`` (or call ``save(temp_path)``) to a temp file beside ``path``, then move it in place.

    Without ``force`` an existing ``path`` is never replaced, even if it appears meanwhile."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists (use --force to overwrite)")
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
        raise click.ClickException(f"{path} exists (use --force to overwrite)") from None
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def _inputs(paths: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for every image named or inside a named folder."""
    found = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += [(file, file.relative_to(path)) for file in sorted(path.rglob("*"))
                      if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES]
        else:
            found.append((path, Path(path.name)))
    return found


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error).splitlines()[0] if str(error) else type(error).__name__)


@click.group(epilog="Example: nnc encode photo.jpg -o photo.nnc --quality 20 && nnc decode photo.nnc -o out.png")
@click.version_option(codec.__version__, prog_name="nnc")
def main() -> None:
    """nnc: photos in very few bytes, for slow links."""


@main.command(epilog="Example: nnc encode photo.jpg -o photo.nnc --target-size 5000")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output .nnc file, or folder for several inputs.")
@click.option("-q", "--quality", type=click.IntRange(1, 100), help="1 (smallest) .. 100; default 30.")
@click.option("--target-size", type=click.IntRange(1), help="Best quality whose file fits this many bytes.")
@click.option("--bpp", type=click.FloatRange(0, min_open=True), help="Target bits per pixel.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--baseline", multiple=True, type=click.Choice(codec.STAGES),
              help="Run this stage as its classical baseline (repeatable); for ablations.")
def encode(inputs: tuple[str, ...], output: str, quality: int | None, target_size: int | None, bpp: float | None,
           force: bool, baseline: tuple[str, ...]) -> None:
    """Encode images (files or folders) to .nnc."""
    if sum(option is not None for option in (quality, target_size, bpp)) > 1:
        raise click.UsageError("give only one of --quality, --target-size and --bpp")
    jobs = _inputs(inputs)
    many = len(jobs) != 1 or Path(inputs[0]).is_dir()
    if many:
        Path(output).mkdir(parents=True, exist_ok=True)
    if not jobs:
        raise click.ClickException("no images found in the inputs")
    failures = 0
    show_bar = many and sys.stderr.isatty()
    with click.progressbar(jobs, label="encoding", file=sys.stderr) if show_bar else nullcontext(jobs) as items:
        for source, relative in items:
            target = (Path(output) / relative).with_suffix(".nnc") if many else Path(output)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    image = codec.open_image(str(source))
                    data, report = codec.encode_with_report(image, quality, target_size, bpp, baseline=baseline)
                for warning in caught:
                    click.echo(f"Warning: {source}: {warning.message}", err=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_atomically(target, data, force)
            except (codec.NncError, OSError, click.ClickException) as error:
                failure = error if isinstance(error, click.ClickException) else _fail(error)
                if not many:
                    raise failure from None
                failures += 1
                click.echo(f"Error: {source}: {failure.message}", err=True)
                continue
            pixels = image.width * image.height
            click.echo(f"{source} -> {target}: {report.bytes} bytes, {8 * report.bytes / pixels:.4f} bpp, "
                       f"PSNR {report.psnr:.2f} dB (quality {report.quality}, luma x{report.luma_scale}, "
                       f"{report.hint_layout} hints)")
    if failures:
        raise click.ClickException(f"{failures} of {len(jobs)} images failed")


@main.command(epilog="Example: nnc decode photo.nnc -o photo.png")
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output image; its extension sets the format (.png, .jpg, .webp, .tif, ...).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
@click.option("--baseline", multiple=True, type=click.Choice(codec.STAGES),
              help="Run this stage as its classical baseline (repeatable); for ablations.")
@MAX_PIXELS_OPTION
def decode(input_file: str, output: str, force: bool, baseline: tuple[str, ...], max_pixels: int) -> None:
    """Decode an .nnc file to an image."""
    target = Path(output)
    try:
        image = codec.decode(Path(input_file).read_bytes(), max_pixels=max_pixels, baseline=baseline)
        image_format = _format_for(target)
        _write_atomically(target, None, force, save=lambda name: image.save(name, format=image_format))
    except (codec.NncError, OSError) as error:
        raise _fail(error) from None
    click.echo(f"{input_file} -> {output}: {image.width}x{image.height} {image.mode}")


def _format_for(path: Path) -> str:
    from PIL import Image

    Image.init()
    image_format = Image.EXTENSION.get(path.suffix.lower())
    if image_format is None:
        raise click.ClickException(f"unknown output format '{path.suffix}': use .png, .jpg, .webp, .tif, ...")
    return image_format


@main.command(epilog="Example: nnc info photo.nnc")
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False))
@MAX_PIXELS_OPTION
def info(input_file: str, max_pixels: int) -> None:
    """Print the header, section sizes, model version and bpp of an .nnc file."""
    try:
        fields = codec.info(Path(input_file).read_bytes(), max_pixels=max_pixels)
    except (codec.NncError, OSError) as error:
        raise _fail(error) from None
    for name, value in fields.items():
        if name == "sections":
            value = ", ".join(f"{section} {size} bytes" for section, size in value.items())
        elif name == "bpp":
            value = f"{value:.4f}"
        click.echo(f"{name}: {value}")


if __name__ == "__main__":
    main()
