"""The ``nnc`` command: a thin click layer over the codec API."""

from __future__ import annotations

import functools
import sys
import time
from collections import Counter
from pathlib import Path

import click

import codec
from codec.batch import run_jobs
from codec.files import IMAGE_SUFFIXES, DecodeOptions, EncodeOptions, decode_file, encode_file, plan_jobs

MAX_PIXELS_OPTION = click.option(
    "--max-pixels", type=click.IntRange(1), default=codec.format.DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse files claiming more pixels than this (decompression-bomb guard).")
BASELINE_OPTION = click.option(
    "--baseline", multiple=True, type=click.Choice(codec.STAGES),
    help="Run this stage as its classical baseline (repeatable); for ablations.")
FORCE_OPTION = click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
JOBS_OPTION = click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
                           help="Files coded in parallel (local processes).")
CLUSTER_OPTION = click.option("--cluster", metavar="ADDRESS",
                              help="Run the batch on this Dask scheduler (e.g. tcp://host:8786).")


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error).splitlines()[0] if str(error) else type(error).__name__)


def _run_batch(worker: functools.partial, inputs: tuple[str, ...], output: str, target_suffix: str,
               source_suffixes: set[str], jobs: int, cluster: str | None, verb: str) -> None:
    """Run one job per input file; a single file fails loudly, a batch reports failures at the end."""
    planned, many = plan_jobs(list(inputs), output, target_suffix, source_suffixes)
    if not planned:
        raise click.ClickException("no input files found")
    if not many:
        result = worker(planned[0])
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if result.status == "failed":
            raise click.ClickException(result.message)
        click.echo(result.message)
        return
    Path(output).mkdir(parents=True, exist_ok=True)
    worker = functools.partial(worker.func, *worker.args, **{**worker.keywords, "skip_existing": True})
    counts: Counter = Counter()
    results = []
    start = time.perf_counter()
    try:
        with click.progressbar(length=len(planned), label=verb, file=sys.stderr, show_pos=True) as progress:
            for result in run_jobs(worker, planned, jobs, cluster):
                results.append(result)
                counts[result.status] += 1
                progress.label = f"{verb} ({counts['done'] / (time.perf_counter() - start):.2f} images/s)"
                progress.update(1)
    except codec.NncError as error:
        raise _fail(error) from None
    seconds = time.perf_counter() - start
    for result in results:
        for warning in result.warnings:
            click.echo(f"Warning: {result.source}: {warning}", err=True)
        if result.status == "failed":
            click.echo(f"Error: {result.source}: {result.message}", err=True)
        elif result.status == "done":
            click.echo(result.message)
    click.echo(f"{verb}: {counts['done']} done, {counts['skipped']} skipped (already there), {counts['failed']} "
               f"failed, in {seconds:.1f} s ({counts['done'] / seconds:.2f} images/s)")
    if counts["failed"]:
        raise click.ClickException(f"{counts['failed']} of {len(planned)} files failed")


@click.group(epilog="Example: nnc encode photo.jpg -o photo.nnc --quality 20 && nnc decode photo.nnc -o out.png")
@click.version_option(codec.__version__, prog_name="nnc")
def main() -> None:
    """nnc: photos in very few bytes, for slow links."""


@main.command(epilog="Example: nnc encode photo.jpg -o photo.nnc --target-size 5000;  "
                     "nnc encode photos/ -o coded/ --jobs 2")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output .nnc file, or folder for several inputs or a folder.")
@click.option("-q", "--quality", type=click.IntRange(1, 100), help="1 (smallest) .. 100; default 30.")
@click.option("--target-size", type=click.IntRange(1), help="Best quality whose file fits this many bytes.")
@click.option("--bpp", type=click.FloatRange(0, min_open=True), help="Target bits per pixel.")
@click.option("--strip", is_flag=True, help="Do not keep the ICC profile and Exif metadata.")
@FORCE_OPTION
@BASELINE_OPTION
@JOBS_OPTION
@CLUSTER_OPTION
def encode(inputs: tuple[str, ...], output: str, quality: int | None, target_size: int | None, bpp: float | None,
           strip: bool, force: bool, baseline: tuple[str, ...], jobs: int, cluster: str | None) -> None:
    """Encode images (files or folders, walked recursively) to .nnc."""
    if sum(option is not None for option in (quality, target_size, bpp)) > 1:
        raise click.UsageError("give only one of --quality, --target-size and --bpp")
    options = EncodeOptions(quality, target_size, bpp, strip, baseline)
    _run_batch(functools.partial(encode_file, options=options, force=force), inputs, output, ".nnc",
               IMAGE_SUFFIXES, jobs, cluster, "encoding")


@main.command(epilog="Example: nnc decode photo.nnc -o photo.png;  nnc decode coded/ -o photos/ --format jpg")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image (its extension sets the format), or folder for several inputs or a folder.")
@click.option("--format", "image_format", default="png", show_default=True,
              help="Output extension for folder outputs (png, jpg, webp, tif, ...).")
@click.option("--partial", is_flag=True, help="Decode a file cut short after its luma section to grayscale.")
@FORCE_OPTION
@BASELINE_OPTION
@MAX_PIXELS_OPTION
@JOBS_OPTION
@CLUSTER_OPTION
def decode(inputs: tuple[str, ...], output: str, image_format: str, partial: bool, force: bool,
           baseline: tuple[str, ...], max_pixels: int, jobs: int, cluster: str | None) -> None:
    """Decode .nnc files (or folders of them) to images."""
    options = DecodeOptions(max_pixels, partial, baseline)
    _run_batch(functools.partial(decode_file, options=options, force=force), inputs, output,
               "." + image_format.lstrip("."), {".nnc"}, jobs, cluster, "decoding")


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


@main.command(epilog="Example: nnc compare photo.png photo.nnc")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("coded", type=click.Path(exists=True, dir_okay=False))
def compare(source: str, coded: str) -> None:
    """How good is an .nnc file: its bpp, PSNR and MS-SSIM against its source image."""
    try:
        fields = codec.compare(codec.open_image(source), Path(coded).read_bytes())
    except (codec.NncError, OSError) as error:
        raise _fail(error) from None
    click.echo(f"{coded}: {fields['bytes']} bytes, {fields['bpp']:.4f} bpp, PSNR {fields['psnr']:.2f} dB, "
               f"PSNR-Y {fields['psnr_y']:.2f} dB, MS-SSIM {fields['ms_ssim']:.4f}")


if __name__ == "__main__":
    main()
