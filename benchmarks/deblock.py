"""The deblocking CNN on its own: ``nnc restore`` on JPEG files, stage timing, side-by-side crops.

    python benchmarks/deblock.py [FOLDER] [--out benchmarks/results/kodak] [--images N] [--parts restore,...]

1. Every image saved as JPEG (Pillow, 4:2:0) at qualities 10 to 90 (``JPEG_QUALITIES``), restored
   with the ``jpeg`` weights (above ``restore.RESTORE_MAX_QUALITY`` written as decoded): PSNR-RGB
   and PSNR-Y before and after, restore seconds.
2. Seconds (median over the images) of a whole nnc decode with and without stage 4, and of
   stage 4 alone, on 2 threads; the encode seconds with stage 4 judged by the encoder.
3. Crops (original | baseline | deblocked) of the first image: nnc at quality 30, JPEG q10.
Writes deblock.md, deblock.json and deblock_crops.png in ``--out``; ``--parts`` runs only some of
restore, timing and crops again, keeping the others' results from deblock.json.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import codec  # noqa: E402
from codec import format, luma  # noqa: E402
from codec.color import rgb_to_ycbcr, to_uint8  # noqa: E402
from codec.deblock import apply_deblock, deblock_level  # noqa: E402
from codec.metrics import psnr  # noqa: E402
from codec.models import RELEASES  # noqa: E402
from codec.stages import Stages  # noqa: E402
from codec.upscale import apply_upscale  # noqa: E402
from codec.weights import load_model  # noqa: E402
from report import crop_sheet, stage_benchmark_arguments  # noqa: E402

JPEG_QUALITIES = (10, 20, 30, 40, 60, 75, 85, 90)
NNC_TIMING_QUALITY = 30  # full-size luma: where the encoder turns stage 4 on
CROP_QUALITY = 30
CROP = (256, 160, 448, 352)  # (left, top, right, bottom) of the crop shown, full-size pixels


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling=2)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _luma(pixels: np.ndarray) -> np.ndarray:
    return rgb_to_ycbcr(pixels)[0]


def _timed(function, *args, **keywords) -> tuple:
    """(function(*args, **keywords), seconds it took)."""
    start = time.perf_counter()
    result = function(*args, **keywords)
    return result, time.perf_counter() - start


def restore_rows(images: dict[str, Image.Image]) -> list[dict]:
    """Per JPEG quality: mean PSNR-RGB and PSNR-Y before and after ``codec.restore``, median seconds."""
    rows = []
    for quality in JPEG_QUALITIES:
        before, after, before_y, after_y, seconds = [], [], [], [], []
        for image in images.values():
            source = np.asarray(image)
            jpeg = _jpeg(image, quality)
            decoded = np.asarray(jpeg.convert("RGB"))
            restored, elapsed = _timed(codec.restore, jpeg, threads=2)
            restored = np.asarray(restored)
            before.append(psnr(source, decoded))
            after.append(psnr(source, restored))
            before_y.append(psnr(_luma(source), _luma(decoded)))
            after_y.append(psnr(_luma(source), _luma(restored)))
            seconds.append(elapsed)
        rows.append({"quality": quality, "psnr_before": float(np.mean(before)), "psnr_after": float(np.mean(after)),
                     "psnr_y_before": float(np.mean(before_y)), "psnr_y_after": float(np.mean(after_y)),
                     "seconds": statistics.median(seconds)})
        print(f"JPEG q{quality}: PSNR {rows[-1]['psnr_before']:.2f} -> {rows[-1]['psnr_after']:.2f} dB",
              file=sys.stderr)
    return rows


def timing(images: dict[str, Image.Image]) -> dict:
    """Median seconds over the images: encode, decode with and without stage 4, stage 4 alone (2 threads;
    run on every image, also where the encoder turned it off)."""
    network = load_model(next(release["deblock"] for release in reversed(RELEASES) if "deblock" in release))
    encode, whole, without, stage = [], [], [], []
    for image in images.values():
        data, elapsed = _timed(codec.encode, image, quality=NNC_TIMING_QUALITY, threads=2)
        encode.append(elapsed)
        whole.append(_timed(codec.decode, data, threads=2)[1])
        without.append(_timed(codec.decode, data, baseline=("deblock",), threads=2)[1])
        container = format.parse_container(data)
        stream = luma.decode_luma(container.sections["luma"], container.luma_codec, container.luma_scale,
                                  container.height, container.width)
        full_luma = apply_upscale(stream, container.height, container.width, container.luma_scale,
                                  len(container.sections["luma"]),
                                  lambda: Stages().network("upscale", RELEASES[-1]), threads=2)
        level = deblock_level(to_uint8(_luma(np.asarray(image))), full_luma)  # run even where the file has 0
        stage.append(_timed(apply_deblock, full_luma, len(container.sections["luma"]), stream.size,
                            container.luma_scale, lambda: network, threads=2, level=level)[1])
    return {"quality": NNC_TIMING_QUALITY, "encode_s": statistics.median(encode),
            "decode_s": statistics.median(whole), "decode_without_deblock_s": statistics.median(without),
            "deblock_stage_s": statistics.median(stage)}


def crops(image: Image.Image, out: Path) -> Path:
    """One PNG: rows nnc (quality CROP_QUALITY) and JPEG q10; columns original, baseline, deblocked."""
    data = codec.encode(image, quality=CROP_QUALITY)
    jpeg = _jpeg(image, 10)
    rows = [(f"nnc q{CROP_QUALITY}, {len(data)} bytes",
             [image, codec.decode(data, baseline=("deblock",)), codec.decode(data)]),
            ("JPEG q10", [image, jpeg.convert("RGB"), codec.restore(jpeg)])]
    return crop_sheet(rows, ["original", "baseline", "deblocked"], CROP, out / "deblock_crops.png")


def main(argv: list[str] | None = None) -> None:
    args, paths = stage_benchmark_arguments(__doc__.splitlines()[0], argv, ("restore", "timing", "crops"))
    images = {path.name: Image.open(path).convert("RGB") for path in paths}
    previous = args.out / "deblock.json"
    results = json.loads(previous.read_text()) if previous.exists() else {}
    results["images"] = len(images)
    if "restore" in args.parts:
        results["restore"] = restore_rows(images)
    if "timing" in args.parts:
        results["timing"] = timing(images)
    args.out.mkdir(parents=True, exist_ok=True)
    if "crops" in args.parts:
        crops(next(iter(images.values())), args.out)
    (args.out / "deblock.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# Deblocking CNN on {len(images)} images of {args.folder.name}", "",
             "`nnc restore` on JPEG (Pillow, 4:2:0): mean PSNR, before -> after", "",
             "| JPEG quality | PSNR-RGB | gain | PSNR-Y | gain | restore s (median) |", "|---|---|---|---|---|---|"]
    for row in results["restore"]:
        lines.append(f"| {row['quality']} | {row['psnr_before']:.2f} -> {row['psnr_after']:.2f} | "
                     f"{row['psnr_after'] - row['psnr_before']:+.2f} | {row['psnr_y_before']:.2f} -> "
                     f"{row['psnr_y_after']:.2f} | {row['psnr_y_after'] - row['psnr_y_before']:+.2f} | "
                     f"{row['seconds']:.2f} |")
    timed = results["timing"]
    lines += ["", f"nnc at quality {timed['quality']}, median seconds on 2 threads: encode {timed['encode_s']:.2f}, "
              f"decode {timed['decode_s']:.2f} (without stage 4: {timed['decode_without_deblock_s']:.2f}), "
              f"stage 4 alone {timed['deblock_stage_s']:.2f}.", "",
              "![original | baseline | deblocked](deblock_crops.png)", ""]
    (args.out / "deblock.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
