"""Benchmark nnc against JPEG, HEVC (BPG/HEIF), WebP, AVIF and JPEG XL on a folder of images.

    python benchmarks/run.py [FOLDER] [--small] [--codecs nnc,jpeg,...] [--out benchmarks/results]

Writes results/<dataset>/: one JSON per codec (every point, machine, versions, settings), then
summary.md (BD-rates, PSNR at fixed rates, nnc's choices) and rd_psnr.png, rd_msssim.png over every
codec JSON in that folder (so a run of a few codecs updates the report).
Finished points are cached in benchmarks/cache/, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import click
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import codec  # noqa: E402
from codecs_under_test import CodecUnderTest, all_codecs, nnc_coder, nnc_peak_memory_mb  # noqa: E402
from metrics import ms_ssim_db, quality_metrics  # noqa: E402
from report import write_report  # noqa: E402

HERE = Path(__file__).parent
DEFAULT_FOLDER = HERE.parent.parent / "shared" / "data" / "kodak"
SMALL_IMAGES, SMALL_SIDE = 2, 256


def load_images(folder: Path, small: bool) -> dict[str, Image.Image]:
    """RGB images of ``folder`` by file name; unreadable files are reported and skipped."""
    images = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            with Image.open(path) as image:
                images[path.name] = image.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            click.echo(f"skipping {path.name}: {str(error).splitlines()[0]}", err=True)
    if small:
        images = {name: image.crop(((image.width - SMALL_SIDE) // 2, (image.height - SMALL_SIDE) // 2,
                                    (image.width + SMALL_SIDE) // 2, (image.height + SMALL_SIDE) // 2))
                  for name, image in list(images.items())[:SMALL_IMAGES]}
    return images


def nnc_source_digest() -> str:
    """SHA-256 prefix of nnc's sources: cached nnc points are reused only for unchanged code
    (other codecs' points only for unchanged settings and library versions)."""
    digest = hashlib.sha256()
    for path in sorted((Path(codec.__file__).parent).rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def library_versions() -> dict:
    import PIL
    import pillow_heif
    import torch

    versions = {"python": platform.python_version(), "nnc": codec.__version__, "pillow": PIL.__version__,
                "pillow_heif": pillow_heif.__version__, "libheif": pillow_heif.libheif_version(),
                "torch": torch.__version__, "numpy": np.__version__}
    try:
        import pillow_jxl

        versions["pillow_jxl"] = getattr(pillow_jxl, "__version__", "installed")
    except ImportError:
        pass
    return versions


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}


def measure(codec_under_test: CodecUnderTest, image: Image.Image, quality: int) -> dict:
    """Every metric of one image coded at one setting."""
    coded = codec_under_test.code(image, quality)
    pixels = image.width * image.height
    return {"quality": quality, "sizes": coded.sizes,
            "bpp": {key: 8 * size / pixels for key, size in coded.sizes.items()},
            **quality_metrics(np.asarray(image), coded.decoded),
            "encode_s": coded.encode_s, "decode_s": coded.decode_s, **coded.extra}


def _write_json_atomically(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(content, indent=1))
    os.replace(temp, path)


def run_codec(codec_under_test: CodecUnderTest, images: dict, qualities: list, cache: Path, progress) -> list:
    points = []
    for quality in qualities:
        for name, image in images.items():
            cached = cache / f"{name}.q{quality}.json"
            if cached.exists():
                point = json.loads(cached.read_text())
            else:
                point = {"image": name, **measure(codec_under_test, image, quality)}
                _write_json_atomically(cached, point)
            points.append(point)
            progress.update(1)
    return points


def curves(points: list, series: dict) -> dict:
    """Per series, one point per quality setting: means over the images (MS-SSIM averaged in dB)."""
    result = {}
    for size_key, series_name in series.items():
        curve = []
        for quality in sorted({p["quality"] for p in points}):
            at = [p for p in points if p["quality"] == quality]
            ms_ssim_values = [p["ms_ssim"] for p in at if not np.isnan(p["ms_ssim"])]
            curve.append({
                "quality": quality,
                "bpp": float(np.mean([p["bpp"][size_key] for p in at])),
                "psnr_rgb": float(np.mean([p["psnr_rgb"] for p in at])),
                "psnr_y": float(np.mean([p["psnr_y"] for p in at])),
                "ms_ssim_db": float(np.mean([ms_ssim_db(v) for v in ms_ssim_values])) if ms_ssim_values else None,
                "encode_s_median": statistics.median(p["encode_s"] for p in at),
                "decode_s_median": statistics.median(p["decode_s"] for p in at),
            })
        result[series_name] = curve
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--small", action="store_true",
                        help=f"CI size: {SMALL_IMAGES} images cropped to {SMALL_SIDE} px, 3 settings per codec")
    parser.add_argument("--codecs", help="comma-separated subset of: " + ", ".join(c.name for c in all_codecs()))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--cache", type=Path, default=HERE / "cache")
    parser.add_argument("--qualities", help="comma-separated subset of the codecs' settings to run (e.g. 1,5,10)")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild summary.md and the plots from the JSONs already in the results folder")
    args = parser.parse_args(argv)

    dataset = args.folder.name + ("-small" if args.small else "")
    if args.report_only:
        write_folder_report(args.out / dataset)
        return
    images = load_images(args.folder, args.small)
    if not images:
        raise SystemExit(f"no readable images in {args.folder}")
    selected = all_codecs() + [
        CodecUnderTest(f"nnc-baseline-{stage}", all_codecs()[0].qualities, nnc_coder((stage,)),
                       {"file": f"nnc, {stage} baseline"}, f"nnc with --baseline {stage}")
        for stage in sorted(codec.LEARNED_STAGES)
    ]
    if args.codecs:
        wanted = set(args.codecs.split(","))
        selected = [c for c in selected if c.name in wanted]
    runnable = []
    for codec_under_test in selected:
        reason = codec_under_test.available()
        if reason:
            click.echo(f"skipping {codec_under_test.name}: {reason}", err=True)
        else:
            runnable.append(codec_under_test)

    def settings_of(codec_under_test: CodecUnderTest) -> list:
        qualities = codec_under_test.qualities
        if args.qualities:
            wanted_qualities = {int(q) for q in args.qualities.split(",")}
            qualities = [q for q in qualities if q in wanted_qualities]
        return [qualities[0], qualities[len(qualities) // 2], qualities[-1]] if args.small else qualities

    versions, digest = library_versions(), nnc_source_digest()
    results = {}
    total = sum(len(settings_of(c)) for c in runnable) * len(images)
    with click.progressbar(length=total, label=f"{dataset}: {len(images)} images", file=sys.stderr) as progress:
        for codec_under_test in runnable:
            is_nnc = codec_under_test.name.startswith("nnc")
            identity = [codec_under_test.settings, versions] + ([digest] if is_nnc else [])
            key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:12]
            cache = args.cache / dataset / codec_under_test.name / key
            points = run_codec(codec_under_test, images, settings_of(codec_under_test), cache, progress)
            results[codec_under_test.name] = {
                "codec": codec_under_test.name, "settings": codec_under_test.settings, "dataset": dataset,
                "images": list(images), "machine": machine(), "versions": versions, "nnc_source": digest,
                "curves": curves(points, codec_under_test.series), "points": points,
            }
    if "nnc" in results:
        results["nnc"]["peak_memory_mb"] = {
            name: nnc_peak_memory_mb(str(args.folder / name), settings_of(runnable[0])[-1],
                                     SMALL_SIDE if args.small else None)
            for name in images
        }
    out = args.out / dataset
    for name, result in results.items():
        _write_json_atomically(out / f"{name}.json", result)
    write_folder_report(out)


def write_folder_report(out: Path) -> None:
    """summary.md and plots over every codec JSON in ``out`` (not the stage benchmarks' JSONs, which
    name no codec), in the usual codec order."""
    order = [c.name for c in all_codecs()]
    every = {path.stem: json.loads(path.read_text()) for path in sorted(out.glob("*.json"))}
    every = {name: result for name, result in every.items() if "codec" in result}
    if not every:
        raise SystemExit(f"no results in {out}")
    ranked = sorted(every, key=lambda name: order.index(name) if name in order else len(order))
    write_report({name: every[name] for name in ranked}, out)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
