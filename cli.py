"""The ``nnc`` command: a thin click layer over the codec API."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import click

import codec
from codec.batch import run_jobs
from codec.files import (
    IMAGE_SUFFIXES,
    STDIO,
    BatchManifest,
    DecodeOptions,
    EncodeOptions,
    FileResult,
    RestoreOptions,
    decode_file,
    encode_file,
    make_folder,
    output_format,
    plan_jobs,
    restore_file,
)
from codec.restore import RESTORE_MAX_QUALITY

MAX_PIXELS_OPTION = click.option(
    "--max-pixels", type=click.IntRange(1), default=codec.format.DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse files claiming more pixels than this (decompression-bomb guard).")
BASELINE_OPTION = click.option(
    "--baseline", multiple=True, type=click.Choice(codec.STAGES),
    help="Run this stage as its classical baseline (repeatable); for ablations.")
ENCODE_THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(1),
    help="CPU threads of the learned stages (default: one per core); the encoder codes that many x265 "
         "candidates at once, up to 2. The output does not depend on it.")
THREADS_OPTION = click.option(
    "--threads", type=click.IntRange(1),
    help="CPU threads of the learned stages (default: one per core). The output does not depend on it.")
FORCE_OPTION = click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
JOBS_OPTION = click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
                           help="Files coded in parallel (local processes).")
CLUSTER_OPTION = click.option("--cluster", metavar="ADDRESS",
                              help="Code the files on this Dask scheduler (e.g. tcp://host:8786).")


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error).splitlines()[0] if str(error) else type(error).__name__)


def _format_suffix(image_format: str) -> str:
    """"." + ``--format``; a usage error, before any work, if Pillow cannot write that format."""
    suffix = "." + image_format.lstrip(".")
    try:
        output_format(Path("x" + suffix))
    except codec.NncError as error:
        raise click.BadParameter(str(error), param_hint="'--format'") from None
    return suffix


def _check_nnc_name(path: Path) -> None:
    if path.name.lower() == ".nnc":
        raise codec.NncError(f"{path} has no name before .nnc (e.g. photo.nnc)")
    if path.suffix.lower() != ".nnc":
        raise codec.NncError(f"{path} does not end in .nnc: encode writes .nnc files (decode writes images); "
                             f"to write into a folder, end it with / ({path}/)")


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _show_progress(message: str) -> None:
    """One progress line on the terminal, rewritten in place."""
    click.echo(f"\r\033[K{message}", err=True, nl=False)


def _run_batch(worker: functools.partial, command: str, inputs: tuple[str, ...], output: str, target_suffix: str,
               source_suffixes: set[str], jobs: int, cluster: str | None, verb: str,
               check_target: Callable[[Path], object]) -> None:
    """Run one job per input file; a single file fails loudly, a batch reports failures at the end.

    ``check_target`` raises NncError for a single output path the command cannot write (a usage
    error). A batch skips the outputs its folder's manifest says are up to date, codes again those
    nnc wrote from other inputs or settings, and leaves any other existing file alone (--force
    overwrites them all)."""
    try:
        planned, many = plan_jobs(list(inputs), output, target_suffix, source_suffixes)
    except codec.NncError as error:
        raise _fail(error) from None
    if not planned:
        raise click.ClickException("no input files found")
    if not many:
        target = planned[0][1]
        if target == STDIO and _stdout_is_terminal():
            raise click.BadParameter("will not write binary data to a terminal: redirect standard output "
                                     "(> file or | command) or name a file", param_hint="'-o' / '--output'")
        if target != STDIO:
            try:
                check_target(Path(target))
            except codec.NncError as error:
                raise click.BadParameter(str(error), param_hint="'-o' / '--output'") from None
        if cluster and STDIO in planned[0]:
            raise click.UsageError("--cluster codes files: it cannot read standard input or write standard output")
        shows_progress = command in ("encode", "decode") and sys.stderr.isatty() and not cluster  # long work
        if shows_progress:
            worker = functools.partial(worker, progress=_show_progress)
        try:
            with contextlib.closing(run_jobs(worker, planned, 1, cluster)) as results:  # closes a Dask client
                result = next(results)
        except codec.NncError as error:
            raise _fail(error) from None
        if shows_progress:
            click.echo("\r\033[K", err=True, nl=False)
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if result.status == "failed":
            raise click.ClickException(result.message)
        click.echo(result.message, err=target == STDIO)  # standard output carries only the file
        return
    try:
        make_folder(Path(output))
    except codec.NncError as error:
        raise _fail(error) from None
    force = worker.keywords.get("force", False)
    try:
        manifest = BatchManifest(Path(output), command, worker.keywords["options"])
        states = [manifest.state(source, target) for source, target in planned]
    except codec.NncError as error:
        raise _fail(error) from None
    results = [FileResult(source, target, "skipped", f"{target} is up to date") if state == "same" else
               FileResult(source, target, "kept", f"{target} exists and was not written by nnc from this file with "
                                                  f"these options: kept (--force overwrites it)")
               for (source, target), state in zip(planned, states) if not force and state in ("same", "foreign")]
    groups = [([job for job, state in zip(planned, states) if state == "new" and not force], False),
              ([job for job, state in zip(planned, states) if force or state == "stale"], True)]
    counts: Counter = Counter(result.status for result in results)
    start = time.perf_counter()
    try:
        with click.progressbar(length=sum(len(group) for group, _ in groups), label=verb, file=sys.stderr,
                               show_pos=True) as progress:
            for group, overwrite in groups:
                if not group:
                    continue
                group_worker = functools.partial(worker.func, *worker.args, **{**worker.keywords, "force": overwrite})
                for result in run_jobs(group_worker, group, jobs, cluster):
                    if result.status == "done":
                        manifest.add(result.source, result.target)
                    results.append(result)
                    counts[result.status] += 1
                    if sys.stderr.isatty():  # elsewhere click would print a line per file
                        progress.label = f"{verb} ({counts['done'] / (time.perf_counter() - start):.2f} images/s)"
                    progress.update(1)
        manifest.compact()
    except codec.NncError as error:
        raise _fail(error) from None
    seconds = time.perf_counter() - start
    for result in results:
        for warning in result.warnings:
            click.echo(f"Warning: {result.source}: {warning}", err=True)
        if result.status in ("failed", "kept"):
            click.echo(f"Error: {result.source}: {result.message}", err=True)
        elif result.status == "done":
            click.echo(result.message)
    kept = f"{counts['kept']} kept (not written by this batch), " if counts["kept"] else ""
    click.echo(f"{verb}: {counts['done']} done, {counts['skipped']} skipped (already there), {kept}"
               f"{counts['failed']} failed, in {seconds:.1f} s ({counts['done'] / seconds:.2f} images/s)")
    problems = [f"{counts['failed']} of {len(planned)} files failed"] if counts["failed"] else []
    if counts["kept"]:
        problems.append(f"{counts['kept']} existing outputs kept: --force overwrites them")
    if problems:
        raise click.ClickException("; ".join(problems))


@click.group(epilog="Example: nnc encode photo.jpg -o photo.nnc --quality 20 && nnc decode photo.nnc -o out.png")
@click.version_option(codec.__version__, prog_name="nnc")
def main() -> None:
    """nnc: photos in very few bytes, for slow links."""


@main.command(epilog="Example: nnc encode photo.jpg -o photo.nnc --target-size 5000;  "
                     "nnc encode photos/ -o coded/ --jobs 2")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@click.option("-o", "--output", required=True, type=click.Path(allow_dash=True),
              help="Output .nnc file (- for standard output), or folder (for several inputs, a folder, "
                   "or when it ends with /).")
@click.option("-q", "--quality", type=click.IntRange(1, 100),
              help="1 (smallest) .. 100; default 30. Made for low rates; 90-100 are near-lossless (about 52 dB).")
@click.option("--target-size", type=click.IntRange(1), help="Best quality whose file fits this many bytes.")
@click.option("--bpp", type=click.FloatRange(0, min_open=True), help="Target bits per pixel.")
@click.option("--strip", is_flag=True, help="Do not keep the ICC profile and Exif metadata.")
@FORCE_OPTION
@BASELINE_OPTION
@ENCODE_THREADS_OPTION
@MAX_PIXELS_OPTION
@JOBS_OPTION
@CLUSTER_OPTION
def encode(inputs: tuple[str, ...], output: str, quality: int | None, target_size: int | None, bpp: float | None,
           strip: bool, force: bool, baseline: tuple[str, ...], threads: int | None, max_pixels: int, jobs: int,
           cluster: str | None) -> None:
    """Encode images (files or folders, walked recursively; - for standard input) to .nnc."""
    if sum(option is not None for option in (quality, target_size, bpp)) > 1:
        raise click.UsageError("give only one of --quality, --target-size and --bpp")
    options = EncodeOptions(quality, target_size, bpp, strip, baseline, threads, max_pixels)
    _run_batch(functools.partial(encode_file, options=options, force=force), "encode", inputs, output, ".nnc",
               IMAGE_SUFFIXES, jobs, cluster, "encoding", _check_nnc_name)


@main.command(epilog="Example: nnc decode photo.nnc -o photo.png;  nnc decode coded/ -o photos/ --format jpg")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@click.option("-o", "--output", required=True, type=click.Path(allow_dash=True),
              help="Output image (its extension sets the format; - for standard output), or folder (for several "
                   "inputs, a folder, or when it ends with /).")
@click.option("--format", "image_format", default="png", show_default=True,
              help="Output extension for folder outputs and standard output (png, jpg, webp, tif, heic, ...).")
@click.option("--partial", is_flag=True, help="Decode a file cut short after its luma section to grayscale.")
@click.option("--look", type=click.Choice(codec.LOOK_CHOICES), default="fidelity", show_default=True,
              help="How the upscaler renders low-rate files: fidelity (least error) or perceptual (sharper "
                   "texture, lower PSNR). The file is the same either way.")
@FORCE_OPTION
@BASELINE_OPTION
@THREADS_OPTION
@MAX_PIXELS_OPTION
@JOBS_OPTION
@CLUSTER_OPTION
def decode(inputs: tuple[str, ...], output: str, image_format: str, partial: bool, look: str, force: bool,
           baseline: tuple[str, ...], threads: int | None, max_pixels: int, jobs: int, cluster: str | None) -> None:
    """Decode .nnc files (or folders of them; - for standard input) to images."""
    suffix = _format_suffix(image_format)
    options = DecodeOptions(max_pixels, partial, baseline, threads, look)
    _run_batch(functools.partial(decode_file, options=options, force=force, stdout_format=suffix), "decode", inputs,
               output, suffix, {".nnc"}, jobs, cluster, "decoding", output_format)


@main.command(epilog="Example: nnc restore old.jpg -o old.png;  nnc restore scans/ -o restored/ --jobs 2",
              help="Clean blocking and ringing out of JPEG files (or folders of them); the inputs are never "
                   f"changed. JPEGs above quality {RESTORE_MAX_QUALITY}, where restoring no longer reliably "
                   "helps, are written as decoded.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output image (its extension sets the format), or folder for several inputs or a folder.")
@click.option("--format", "image_format", default="png", show_default=True,
              help="Output extension for folder outputs (png, webp, tif, ...).")
@FORCE_OPTION
@THREADS_OPTION
@MAX_PIXELS_OPTION
@JOBS_OPTION
@CLUSTER_OPTION
def restore(inputs: tuple[str, ...], output: str, image_format: str, force: bool, threads: int | None,
            max_pixels: int, jobs: int, cluster: str | None) -> None:
    """Restore JPEG files with ``restore_file`` (the help text is the decorator's: it names
    RESTORE_MAX_QUALITY)."""
    suffix = _format_suffix(image_format)
    options = RestoreOptions(threads, max_pixels)
    _run_batch(functools.partial(restore_file, options=options, force=force), "restore", inputs,
               output, suffix, {".jpg", ".jpeg", ".jpe", ".jfif"}, jobs, cluster, "restoring", output_format)


def _truncation(fields: dict) -> str:
    """The info line of a truncated file (``codec.info``'s ``fields``): where it ends and what decodes."""
    if "luma" not in fields["sections"]:
        return "yes: the file is cut short before its luma section is complete: nothing to decode"
    sections_complete = fields["hint_layout"] == "none" or "hints" in fields["sections"]
    ends = "the file ends in bytes that are not a complete section, cut short or appended" \
        if fields["cut_section"] is None and sections_complete else "the file is cut short"
    return f"yes: {ends} (nnc decode --partial decodes what arrived)"


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
        elif name == "truncated":
            value = _truncation(fields) if value else "no"
        elif name == "cut_section":
            continue  # told by the truncated line
        elif name == "luma_loop_filters":
            value = {True: "yes", False: "no", None: "unknown (no complete luma section)"}[value]
        elif name == "color_strength":
            value = "none (stage 3 runs no network on this file)" if value is None else \
                f"Cb {value[0]}/8, Cr {value[1]}/8 of the colorizer's correction"
        click.echo(f"{name}: {value}")


@main.command(epilog="Example: nnc compare photo.png photo.nnc")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("coded", type=click.Path(exists=True, dir_okay=False))
@MAX_PIXELS_OPTION
def compare(source: str, coded: str, max_pixels: int) -> None:
    """How good is an .nnc file: its bpp, PSNR and MS-SSIM against its source image."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fields = codec.compare(source, coded, max_pixels)
        except (codec.NncError, OSError) as error:
            raise _fail(error) from None
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    click.echo(f"{coded}: {fields['bytes']} bytes, {fields['bpp']:.4f} bpp, PSNR {fields['psnr']:.2f} dB, "
               f"PSNR-Y {fields['psnr_y']:.2f} dB, MS-SSIM {fields['ms_ssim']:.4f}")


if __name__ == "__main__":
    main()
