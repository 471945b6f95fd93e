"""The colorizer (decoder stage 3) on its own: chroma quality at the same hints and at equal color bytes, timing, crops.

    python benchmarks/colorize.py [FOLDER] [--out benchmarks/results/kodak] [--images N] [--parts equal_bytes,...]

1. Same hints: every image encoded by nnc at qualities 1, 5, 10, 16, 25 and 40; the file decoded
   with the learned colorizer and with the classical one (``--baseline color``): color bytes (the
   hints section), PSNR-CbCr and PSNR-RGB of each. The encoder chose the hints for the learned
   colorizer, so this is the learned stage's own gain on the hints it gets.
2. Equal color bytes: for every image, the luma nnc codes at quality 10 and Cb | Cr thumbnails at
   1/2, 1/4 and 1/8 over a grid of x265 qualities; per image the best PSNR-CbCr at each color
   size (the upper hull over the thumbnail factors), classical, learned (the release's network for
   the hints, at full strength), and nnc's (either the classical colorization or the learned one
   at the color strength the encoder picks, a byte more): the color bytes each needs at equal
   PSNR-CbCr against the classical curve (BD-rate), over the whole range and at nnc's rates.
3. Seconds (median of 5, 2 threads) of stage 3 alone on a 768x512 image, grid hints at 1/4 and
   at 1/2 (each with the release's network for them).
4. Crops (original | classical | learned) of kodim03 and kodim23 at quality 10, where the
   classical colorization bleeds.
Writes colorize.md, colorize.json and colorize_crops.png in ``--out``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

import codec  # noqa: E402
from codec import chroma  # noqa: E402
from codec.color import rgb_to_ycbcr  # noqa: E402
from codec.metrics import psnr  # noqa: E402
from codec.models import RELEASES  # noqa: E402
from codec.pipeline import ImageEncoder, color_entry  # noqa: E402
from codec.weights import load_model  # noqa: E402
from metrics import bd_rate  # noqa: E402
from report import crop_sheet, stage_benchmark_arguments  # noqa: E402

NNC_QUALITIES = (1, 5, 10, 16, 25, 40)
CURVE_LUMA_QUALITY = 10
CURVE_X265_QUALITIES = (0, 5, 10, 15, 20, 25, 30, 35, 40, 50)
LOW_RATE_CBCR_DB = 40.0  # PSNR-CbCr of nnc's files at qualities 1-25: 33.7-39.4 dB (same-hints table)
PARTS = ("same_hints", "equal_bytes", "timing", "crops")
CROP_IMAGES = {"kodim03": (250, 60, 442, 252), "kodim23": (330, 60, 522, 252)}  # (left, top, right, bottom)
CROP_QUALITY = 10


def _chroma_psnr(pixels: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR (dB) over the Cb and Cr samples of two (H, W, 3) uint8 RGB images."""
    _, cb, cr = rgb_to_ycbcr(pixels)
    _, decoded_cb, decoded_cr = rgb_to_ycbcr(decoded)
    return psnr(np.stack([cb, cr]), np.stack([decoded_cb, decoded_cr]))


def same_hints(images: list[Image.Image]) -> list[dict]:
    """Per nnc quality: mean color bytes, PSNR-CbCr and PSNR-RGB of the classical and learned colorization."""
    rows = []
    for quality in NNC_QUALITIES:
        scores: dict[str, list[float]] = {}
        for image in images:
            pixels = np.asarray(image)
            data, report = codec.encode_with_report(image, quality)
            scores.setdefault("bytes", []).append(report.bytes)
            scores.setdefault("color bytes", []).append(report.section_bytes.get("hints", 0))
            for name, baseline in (("classical", ("color",)), ("learned", ())):
                decoded = np.asarray(codec.decode(data, baseline=baseline))
                scores.setdefault(f"{name} CbCr", []).append(_chroma_psnr(pixels, decoded))
                scores.setdefault(f"{name} RGB", []).append(psnr(pixels, decoded))
        rows.append({"quality": quality, **{name: float(np.mean(values)) for name, values in scores.items()}})
        print(f"q{quality}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()), file=sys.stderr)
    return rows


def _upper_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points (bytes, PSNR) no other point beats with fewer or equal bytes, by rising bytes."""
    hull: list[tuple[float, float]] = []
    for point in sorted(points):
        if hull and point[0] == hull[-1][0] and point[1] > hull[-1][1]:
            hull[-1] = point  # as many bytes, better: the earlier one is beaten
        elif not hull or point[1] > hull[-1][1]:
            hull.append(point)
    return hull


def _bd_rate(hulls: dict[str, list[tuple[float, float]]], name: str, top: float | None = None) -> float:
    """BD-rate (%) of hull ``name`` against the classical one, over points of at most ``top`` dB."""
    keep = [[point for point in hulls[curve] if top is None or point[1] <= top] for curve in ("classical", name)]
    return bd_rate(*zip(*keep[0]), *zip(*keep[1])) if min(len(k) for k in keep) >= 2 else float("nan")


def _network(hints: chroma.Hints) -> nn.Module:
    """The newest release's stage-3 network for ``hints``."""
    return load_model(RELEASES[-1][color_entry(RELEASES[-1], hints)])


def equal_bytes(images: list[Image.Image]) -> dict:
    """Per image, hull curves of (color bytes, PSNR-CbCr) over thumbnail factors and x265 qualities:
    classical, learned at full strength, and nnc (per hints the classical colorization, or the
    learned one at the encoder's color strength, whose header byte it counts); their BD-rates
    against the classical curve, over the whole range and up to LOW_RATE_CBCR_DB (the chroma
    quality nnc reaches at qualities 1-25); means and medians."""
    savings: dict[str, list[float]] = {}
    for image in images:
        pixels = np.asarray(image)
        encoder = ImageEncoder(pixels)
        full_luma = encoder.upscaled_luma(encoder.choose_luma(CURVE_LUMA_QUALITY))
        original = np.stack([encoder.cb, encoder.cr])
        points: dict[str, list[tuple[float, float]]] = {"classical": [], "learned": [], "nnc": []}
        for factor_log2 in (1, 2, 3):
            for x265_quality in CURVE_X265_QUALITIES:
                candidate = chroma.encode_grid_hints(encoder.cb, encoder.cr, factor_log2, x265_quality)
                size = len(candidate.payload)
                classical = chroma.colorize(full_luma, candidate.hints)
                network = _network(candidate.hints)
                output = chroma.network_colors(network, full_luma, classical,
                                               chroma.colorize_condition(candidate.hints, *full_luma.shape), 2)
                source = (encoder.cb, encoder.cr)
                _, at_best = chroma.best_colors(output, classical, source, keep_mean=network.keep_mean)
                for name, colors, extra in (
                        ("classical", classical, 0),
                        ("learned", chroma.finish_colors(output, classical, keep_mean=network.keep_mean), 0),
                        ("nnc", classical, 0), ("nnc", at_best, 1)):
                    points[name].append((size + extra, psnr(original, np.stack(colors))))
        hulls = {name: _upper_hull(values) for name, values in points.items()}
        for name in ("learned", "nnc"):
            savings.setdefault(f"{name} all", []).append(_bd_rate(hulls, name))
            savings.setdefault(f"{name} low", []).append(_bd_rate(hulls, name, LOW_RATE_CBCR_DB))
        print(f"{len(images)} images: " + ", ".join(f"{k} {v[-1]:+.1f} %" for k, v in savings.items()), file=sys.stderr)
    summary = {}
    for name, values in savings.items():
        valid = [value for value in values if np.isfinite(value)]
        summary[name] = {"mean": float(np.mean(valid)), "median": float(np.median(valid)), "per_image": values}
    return summary


def timing(factor_log2: int) -> float:
    """Median seconds of stage 3 alone on 2 threads: a 768x512 image with grid hints at 1 / 2**factor_log2."""
    rng = np.random.default_rng(0)
    luma = rng.integers(0, 256, (512, 768), dtype=np.uint8)
    cb, cr = (rng.uniform(80, 180, (512, 768)) for _ in range(2))
    hints = chroma.encode_grid_hints(cb, cr, factor_log2, 20).hints
    network = _network(hints)
    runs = []
    for _ in range(6):
        start = time.perf_counter()
        chroma.colorize(luma, hints, lambda: network, 2)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs[1:])


def crops(folder: Path, out: Path) -> Path | None:
    """One PNG: a row per crop image at CROP_QUALITY; columns original, classical, learned."""
    rows = []
    for stem, box in CROP_IMAGES.items():
        path = folder / f"{stem}.png"
        if not path.exists():
            continue
        image = Image.open(path).convert("RGB")
        data = codec.encode(image, quality=CROP_QUALITY)
        versions = [image.crop(box), codec.decode(data, baseline=("color",)).crop(box), codec.decode(data).crop(box)]
        rows.append((f"{stem} q{CROP_QUALITY}, {len(data)} bytes", versions))
    if not rows:
        return None
    side = CROP_IMAGES["kodim03"]
    return crop_sheet(rows, ["original", "classical", "learned"], (0, 0, side[2] - side[0], side[3] - side[1]),
                      out / "colorize_crops.png")


def main(argv: list[str] | None = None) -> None:
    """Command line: run every measurement and write the results."""
    args, paths = stage_benchmark_arguments(__doc__.splitlines()[0], argv, parts=PARTS)
    images = [Image.open(path).convert("RGB") for path in paths]
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "colorize.json"
    results = json.loads(saved.read_text()) if saved.exists() and args.parts != list(PARTS) else {}
    results["images"] = len(images)
    if "same_hints" in args.parts:
        results["same_hints"] = same_hints(images)
    if "equal_bytes" in args.parts:
        results["equal_bytes"] = equal_bytes(images)
    if "timing" in args.parts:
        results["timing_768x512_s"] = timing(2)
        results["timing_768x512_half_s"] = timing(1)
    if "crops" in args.parts:
        crops(args.folder, args.out)
    saved.write_text(json.dumps(results, indent=1) + "\n")
    lines = [f"# Colorizer (stage 3) on {len(images)} images of {args.folder.name}", "",
             "Same hints: each file decoded with the classical colorization and as nnc decodes it (learned, unless "
             "the file's classical_color bit is set; means).", "",
             "| quality | bytes | color bytes | PSNR-CbCr classical | learned | gain | PSNR-RGB classical | learned |",
             "|---|---|---|---|---|---|---|---|"]
    for row in results["same_hints"]:
        lines.append(f"| {row['quality']} | {row['bytes']:.0f} | {row['color bytes']:.0f} | "
                     f"{row['classical CbCr']:.2f} | {row['learned CbCr']:.2f} | "
                     f"{row['learned CbCr'] - row['classical CbCr']:+.2f} | {row['classical RGB']:.2f} | "
                     f"{row['learned RGB']:.2f} |")
    saving = results["equal_bytes"]
    lines += ["", f"Equal color bytes (thumbnails at 1/2, 1/4, 1/8 x x265 qualities {CURVE_X265_QUALITIES[0]}-"
              f"{CURVE_X265_QUALITIES[-1]}, luma of quality {CURVE_LUMA_QUALITY}, best factor per size): color bytes "
              "for the same PSNR-CbCr as the classical colorization (BD-rate per image; mean / median over the "
              "images). learned: the release's network for the hints at full strength; nnc: per hints the "
              "classical colorization or the learned one at the encoder's color strength (a byte more), as "
              "the file's classical_color bit and color_strength byte allow.", "",
              f"| colorization | whole range | up to {LOW_RATE_CBCR_DB:.0f} dB (nnc's qualities 1-25) |",
              "|---|---|---|"]
    for name in ("learned", "nnc"):
        lines.append(f"| {name} | " + " | ".join(f"{saving[f'{name} {part}']['mean']:+.1f} % / "
                                                   f"{saving[f'{name} {part}']['median']:+.1f} %"
                                                   for part in ("all", "low")) + " |")
    half = results.get("timing_768x512_half_s")  # runs before nnc 0.14 timed hints at 1/4 alone
    lines += ["", f"Stage 3 alone, 768x512, 2 threads (median of 5): {results['timing_768x512_s']:.3f} s with "
              "hints at 1/4" + (f", {half:.3f} s at 1/2." if half is not None else "."), "",
              "![original | classical | learned](colorize_crops.png)", ""]
    (args.out / "colorize.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
