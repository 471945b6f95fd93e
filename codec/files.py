"""File-level jobs: read an image or an .nnc file, code it, write the result atomically.

Each job returns a FileResult instead of raising, so a batch goes on past a bad file. The jobs are
plain picklable functions: they run the same in-process, in a process pool or on a Dask cluster.
A batch's output folder holds a manifest of what it wrote (BatchManifest), so a run resumes
exactly. "-" as a single job's source or target is standard input or output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import stat
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from . import __version__, decode, encode_with_report, format, open_image, restore
from .errors import FormatError, NncError
from .restore import RESTORE_MAX_QUALITY
from .weights import model_version

IMAGE_SUFFIXES = {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".webp", ".bmp", ".ppm",
                  ".pgm", ".pbm", ".pnm", ".heic", ".heif", ".gif", ".avif", ".tga", ".jp2", ".j2k", ".jpx",
                  ".qoi"}  # the picture formats Pillow reads that a folder input is searched for
STDIO = "-"  # a single job's source (standard input) or target (standard output)
MANIFEST_NAME = ".nnc-batch.jsonl"
_OPTIONS_KEEPING_OUTPUT = {"threads", "max_pixels"}  # options that never change an output's bytes
_MAX_LISTED_CLASHES = 5


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
    threads: int | None = None
    max_pixels: int = format.DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class DecodeOptions:
    """Options of ``codec.decode`` (see there)."""

    max_pixels: int = format.DEFAULT_MAX_PIXELS
    partial: bool = False
    baseline: tuple[str, ...] = ()
    threads: int | None = None
    look: str = "fidelity"


@dataclass(frozen=True)
class RestoreOptions:
    """Options of ``codec.restore`` (see there)."""

    threads: int | None = None
    max_pixels: int = format.DEFAULT_MAX_PIXELS


@dataclass
class FileResult:
    """Outcome of one file job: status "done", "skipped" (output already there), "kept" (an output
    this batch did not write is in the way: left alone) or "failed"."""

    source: str
    target: str
    status: str
    message: str
    warnings: list[str] = field(default_factory=list)


def write_atomically(path: Path, data: bytes | None = None, save: Callable[[str], None] | None = None,
                     force: bool = False) -> None:
    """Write ``data`` (or call ``save(temp_path)``) to a temp file beside ``path``, then move it in place.

    Without ``force`` an existing ``path`` is never replaced, even one that appears meanwhile
    (OutputExistsError). On any failure the temp file is removed and ``path`` is untouched; an
    OSError names ``path``, never the temp file. The file gets the mode a plain ``open(path, "w")``
    gives: that of the file it replaces, else 0o666 less the umask."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists (use --force to overwrite)")
    try:
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                                                 dir=path.parent)
    except OSError as error:
        raise type(error)(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(descriptor, "wb") as temp_file:
            if data is not None:
                temp_file.write(data)
        if save is not None:
            save(temp_name)
        os.chmod(temp_name, _plain_mode(path))
        if force:
            os.replace(temp_name, path)
        else:
            _move_into_new_name(temp_name, path)
    except FileExistsError:
        os.unlink(temp_name)
        raise OutputExistsError(f"{path} exists (use --force to overwrite)") from None
    except BaseException as error:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        if isinstance(error, OSError) and error.filename == temp_name:
            raise type(error)(error.errno, error.strerror, str(path)) from None
        raise


def _move_into_new_name(temp_name: str, path: Path) -> None:
    """Move the file ``temp_name`` to ``path``, never replacing a file there (FileExistsError):
    by a hard link where the file system has them; where it has none (FAT, exFAT: SD cards, USB
    sticks), the name is first claimed by an exclusive create, then replaced (a crash between the
    two leaves an empty file at ``path``: the hard link never does)."""
    try:
        os.link(temp_name, path)
    except OSError as error:  # FileExistsError (EEXIST) is re-raised as it is
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
    else:
        os.unlink(temp_name)


def _plain_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` gives: those of the file it replaces, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (threads may be creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_format(path: Path) -> str:
    """Pillow's format name for an output path's extension (HEIF too); NncError for an unknown extension."""
    import pillow_heif

    pillow_heif.register_heif_opener()  # also registers saving .heic/.heif
    Image.init()
    image_format = Image.EXTENSION.get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise NncError(f"unknown output format '{path.suffix}': use .png, .jpg, .webp, .tif, ...")
    return image_format


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents as needed; NncError in one line if that cannot be done."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NncError(f"cannot create the output folder {folder}: a file is in the way") from None
    except OSError as error:
        raise NncError(f"cannot create the output folder {folder}: {error.strerror or error}") from None


def _display(name: str, stream: str) -> str:
    return stream if name == STDIO else name


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _run_job(source: str, target: str, skip_existing: bool, force: bool, job: Callable[[Path], str]) -> FileResult:
    if target != STDIO and not force and Path(target).exists():  # before any work (write_atomically checks again)
        if skip_existing:
            return FileResult(source, target, "skipped", f"{target} exists, skipped")
        return FileResult(source, target, "failed", f"{target} exists (use --force to overwrite)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if target != STDIO:
                make_folder(Path(target).parent)
            message = job(Path(target))
            status = "done"
        except (NncError, OSError) as error:
            message, status = str(error).splitlines()[0] if str(error) else type(error).__name__, "failed"
        except Exception as error:  # a bug: still one line, and the batch goes on
            message, status = f"internal error: {type(error).__name__}: {error}", "failed"
    return FileResult(source, target, status, message, [str(w.message) for w in caught])


def encode_file(job: tuple[str, str], options: EncodeOptions, force: bool = False,
                skip_existing: bool = False, progress: Callable[[str], None] | None = None) -> FileResult:
    """Encode the image at job[0] into the .nnc file job[1] ("-": standard input / output).

    progress: told of each quality a --target-size or --bpp search tries and each candidate coded."""
    source, target = job

    def run(path: Path) -> str:
        if source == STDIO:
            stream = io.BytesIO(_read_stdin())
            stream.name = "<stdin>"
            image = open_image(stream, options.max_pixels)
        else:
            image = open_image(source, options.max_pixels)
        data, report = encode_with_report(image, options.quality, options.target_size, options.bpp,
                                          max_pixels=options.max_pixels, baseline=options.baseline,
                                          strip=options.strip, threads=options.threads, progress=progress)
        if target == STDIO:
            _write_stdout(data)
        else:
            write_atomically(path, data, force=force)
        return (f"{_display(source, 'stdin')} -> {_display(target, 'stdout')}: {report.bytes} bytes, "
                f"{8 * report.bytes / (image.width * image.height):.4f} "
                f"bpp, PSNR {report.psnr:.2f} dB (quality {report.quality}, luma x{report.luma_scale}, "
                f"{report.hint_layout} hints)")

    return _run_job(source, target, skip_existing, force, run)


def decode_file(job: tuple[str, str], options: DecodeOptions, force: bool = False,
                skip_existing: bool = False, stdout_format: str = "png",
                progress: Callable[[str], None] | None = None) -> FileResult:
    """Decode the .nnc file job[0] into the image file job[1] (format from its extension).

    "-" is standard input / output; ``stdout_format`` is then the output's format (an extension).
    progress: told of each decoder stage as it starts."""
    source, target = job

    def run(path: Path) -> str:
        image_format = output_format(Path(f"{STDIO}.{stdout_format.lstrip('.')}") if target == STDIO else path)
        image = _decode_data(_read_stdin() if source == STDIO else Path(source).read_bytes(), options, progress)
        metadata = {key: image.info[key] for key in ("icc_profile", "exif") if key in image.info}
        if target == STDIO:
            buffer = io.BytesIO()
            image.save(buffer, format=image_format, **metadata)
            _write_stdout(buffer.getvalue())
        else:
            write_atomically(path, save=lambda name: image.save(name, format=image_format, **metadata), force=force)
        lost = image.info.get("nnc_lost") if image.info.get("nnc_partial") else None
        note = {"color hints": " (partial file: grayscale, the color hints were cut off)",
                "metadata": " (partial file: its metadata was cut off, so no ICC profile or Exif)",
                "other bytes": " (partial file: the bytes after its last complete section were left out)"}.get(lost, "")
        return (f"{_display(source, 'stdin')} -> {_display(target, 'stdout')}: {image.width}x{image.height} "
                f"{image.mode}{note}")

    return _run_job(source, target, skip_existing, force, run)


def _decode_data(data: bytes, options: DecodeOptions, progress: Callable[[str], None] | None = None) -> Image.Image:
    """codec.decode with ``options``; a truncation error says whether --partial would decode the file."""
    try:
        return decode(data, options.max_pixels, options.baseline, options.partial, options.threads, options.look,
                      progress)
    except FormatError as error:
        if options.partial:
            raise
        try:
            container = format.parse_container(data, options.max_pixels, partial=True)
        except NncError:
            raise error from None
        if container.truncated and "luma" in container.sections:
            raise FormatError(f"{error}; --partial decodes the part that arrived") from None
        raise


def restore_file(job: tuple[str, str], options: RestoreOptions, force: bool = False,
                 skip_existing: bool = False) -> FileResult:
    """Restore the JPEG file job[0] into the image file job[1] (format from its extension); the input
    is only read."""
    source, target = job

    def run(path: Path) -> str:
        image_format = output_format(path)
        if path.resolve() == Path(source).resolve():
            raise NncError(f"{target} is the input file: restore never overwrites its input")
        image = restore(open_image(source, options.max_pixels), options.threads)
        metadata = {key: image.info[key] for key in ("icc_profile", "exif") if key in image.info}
        write_atomically(path, save=lambda name: image.save(name, format=image_format, **metadata), force=force)
        quality = image.info["nnc_jpeg_quality"]
        done = (f"restored (JPEG quality {quality})" if image.info["nnc_restored"] else
                f"written as decoded: JPEG quality {quality} is above {RESTORE_MAX_QUALITY}, where restoring no "
                f"longer reliably helps")
        return f"{source} -> {target}: {image.width}x{image.height} {image.mode}, {done}"

    return _run_job(source, target, skip_existing, force, run)


def plan_jobs(inputs: list[str], output: str, target_suffix: str,
              source_suffixes: set[str]) -> tuple[list[tuple[str, str]], bool]:
    """(source, target) pairs, and whether ``output`` is a batch's folder (several inputs or a folder input).

    Folders are walked recursively for files with ``source_suffixes``; their tree is kept under
    ``output``. A single file input maps to ``output`` itself, or into it (named after the input,
    with ``target_suffix``) when ``output`` ends with a path separator or is an existing folder.
    "-" is standard input or output, for one input only. Sources whose outputs would have the same
    name (photo.jpg and photo.heic) keep their extension in it (photo.jpg.nnc, photo.heic.nnc);
    clashes left after that, and an output that is its own input, raise NncError before any work."""
    many = len(inputs) != 1 or Path(inputs[0]).is_dir()
    if many and STDIO in inputs:
        raise NncError("- (standard input) must be the only input")
    if many and output == STDIO:
        raise NncError("-o - (standard output) takes one input file, not several or a folder")
    if (many and not output.endswith(("/", os.sep)) and not Path(output).is_dir()
            and Path(output).suffix.lower() in {*IMAGE_SUFFIXES, ".nnc", target_suffix}):
        raise NncError(f"several inputs or a folder go into a folder, and {output} names a "
                       f"{Path(output).suffix} file: give a folder (e.g. {Path(output).with_suffix('')}/)")
    if not many:
        source, target = inputs[0], output
        if output != STDIO and (output.endswith(("/", os.sep)) or Path(output).is_dir()):
            if source == STDIO:
                raise NncError("reading standard input, -o must name the output file, not a folder")
            target = str(Path(output) / Path(source).with_suffix(target_suffix).name)
        jobs = [(source, target)]
    else:
        found: dict[str, tuple[Path, Path]] = {}  # resolved source -> (source, path under output)
        for name in inputs:
            path = Path(name)
            files = ([(file, file.relative_to(path)) for file in sorted(path.rglob("*"))
                      if file.is_file() and file.suffix.lower() in source_suffixes] if path.is_dir()
                     else [(path, Path(path.name))])
            for file, relative in files:
                found.setdefault(os.path.realpath(file), (file, relative))
        plain = Counter(str(relative.with_suffix(target_suffix)).casefold() for _, relative in found.values())
        jobs = []
        for file, relative in found.values():
            clash = plain[str(relative.with_suffix(target_suffix)).casefold()] > 1
            name = relative.name + target_suffix if clash else relative.with_suffix(target_suffix).name
            jobs.append((str(file), str(Path(output) / relative.parent / name)))
    _check_targets(jobs)
    return jobs, many


def _check_targets(jobs: list[tuple[str, str]]) -> None:
    """NncError listing the outputs that two sources would write (file names compared without case,
    as some file systems do) or that would overwrite their own source."""
    sources_of: dict[str, list[str]] = {}
    for source, target in jobs:
        sources_of.setdefault(target.casefold(), []).append(source)
    clashes = [f"{target} from {' and '.join(sources_of[target.casefold()])}" for source, target in jobs
               if len(sources_of[target.casefold()]) > 1 and sources_of[target.casefold()][0] == source]
    if clashes:
        more = f" and {len(clashes) - _MAX_LISTED_CLASHES} more" if len(clashes) > _MAX_LISTED_CLASHES else ""
        raise NncError(f"outputs would overwrite each other: {'; '.join(clashes[:_MAX_LISTED_CLASHES])}{more} "
                       f"(code these inputs into separate folders)")
    for source, target in jobs:
        if STDIO not in (source, target) and os.path.realpath(source) == os.path.realpath(target):
            raise NncError(f"{target} would overwrite its own input")


class BatchManifest:
    """What batches wrote into an output folder: ``.nnc-batch.jsonl`` there, one JSON line per
    output file (its path under the folder), with its source (resolved path, size, mtime), the
    command and its options (those that change the output), the nnc and model versions, and the
    output's own size and mtime, as written.

    An existing output is then "same" (written from this source with these settings: skip it),
    "stale" (written by nnc from another source, other options or another version: code it again)
    or "foreign" (not written by nnc, or changed since: never overwritten without --force).
    """

    def __init__(self, folder: Path, command: str, options: object) -> None:
        self.folder = folder
        self.path = folder / MANIFEST_NAME
        settings = {key: value for key, value in dataclasses.asdict(options).items()
                    if key not in _OPTIONS_KEEPING_OUTPUT}
        settings = {"command": command, "options": settings, "nnc": __version__,
                    "model_version": model_version().hex()}
        self.settings = json.loads(json.dumps(settings))  # as read back: tuples become lists
        self.records: dict[str, dict] = {}
        try:
            lines = self.path.read_bytes().decode("utf-8", errors="replace").splitlines()  # damaged lines are dropped
        except FileNotFoundError:
            lines = []
        except OSError as error:
            raise NncError(f"cannot read {self.path}: {error.strerror or error}") from None
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a crash
                continue
            if isinstance(record, dict) and isinstance(record.get("output"), str):
                self.records[record["output"]] = record
        if lines:
            self.compact()

    def _record(self, source: str, target: str, output: os.stat_result) -> dict:
        source_stat = os.stat(source)
        return {"output": Path(target).relative_to(self.folder).as_posix(), "output_size": output.st_size,
                "output_mtime_ns": output.st_mtime_ns, "source": os.path.realpath(source),
                "source_size": source_stat.st_size, "source_mtime_ns": source_stat.st_mtime_ns, **self.settings}

    def state(self, source: str, target: str) -> str:
        """"new" (no output yet), or for an existing output "same", "stale" or "foreign" (see the class)."""
        try:
            output = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):  # a file where the target's folder goes: the job says so
            return "new"
        record = self.records.get(Path(target).relative_to(self.folder).as_posix())
        if record is None or (record.get("output_size"), record.get("output_mtime_ns")) != (
                output.st_size, output.st_mtime_ns):
            return "foreign"
        return "same" if record == self._record(source, target, output) else "stale"

    def add(self, source: str, target: str) -> None:
        """Record that ``target`` was just written from ``source`` with this batch's settings."""
        record = self._record(source, target, os.stat(target))
        self.records[record["output"]] = record
        try:
            with open(self.path, "a", encoding="utf-8") as manifest:
                manifest.write(json.dumps(record) + "\n")
        except OSError as error:
            raise NncError(f"cannot write {self.path}: {error.strerror or error}") from None

    def compact(self) -> None:
        """Rewrite the manifest with one line per output that still exists."""
        kept = [record for key, record in self.records.items() if (self.folder / key).is_file()]
        data = "".join(json.dumps(record) + "\n" for record in kept).encode("utf-8")
        try:
            write_atomically(self.path, data, force=True)
        except OSError as error:
            raise NncError(f"cannot write {self.path}: {error.strerror or error}") from None
