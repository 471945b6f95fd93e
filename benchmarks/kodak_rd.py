"""Rate-distortion of nnc, JPEG and HEVC 4:2:0 (pillow-heif) on a folder of images.

Usage: python benchmarks/kodak_rd.py [FOLDER] [--qualities 1,10,...] [--out results.json]
Prints mean bpp / PSNR per point and BD-rates on PSNR-RGB; writes every point as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

import codec
from bdrate import bd_rate, psnr_at_rate
from codec.color import rgb_to_ycbcr
from codec.hevc import X265_PARAMS, nal_units_of_heif  # payload without container, as nnc stores it


def metrics(reference: np.ndarray, decoded: np.ndarray, size: int) -> dict:
    height, width = reference.shape[:2]
    mse_rgb = np.mean((reference.astype(float) - decoded) ** 2)
    mse_y = np.mean((rgb_to_ycbcr(reference)[0] - rgb_to_ycbcr(decoded)[0]) ** 2)
    return {"bytes": size, "bpp": 8 * size / (width * height), "psnr_rgb": 10 * np.log10(255**2 / mse_rgb),
            "psnr_y": 10 * np.log10(255**2 / mse_y)}


def run_nnc(image: Image.Image, reference: np.ndarray, quality: int) -> dict:
    start = time.perf_counter()
    data, report = codec.encode_with_report(image, quality=quality)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = np.asarray(codec.decode(data).convert("RGB"))
    decode_seconds = time.perf_counter() - start
    return {**metrics(reference, decoded, len(data)), "encode_s": encode_seconds, "decode_s": decode_seconds,
            "luma_scale": report.luma_scale, "hint_layout": report.hint_layout, "hint_params": report.hint_params,
            "sections": report.section_bytes}


def run_jpeg(image: Image.Image, reference: np.ndarray, quality: int) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, subsampling="4:2:0")
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return metrics(reference, decoded, len(buffer.getvalue()))


def run_heif(image: Image.Image, reference: np.ndarray, quality: int, enc_params: dict | None = None) -> dict:
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=quality, chroma=420, enc_params=enc_params or {})
    data = buffer.getvalue()
    decoded = np.asarray(pillow_heif.open_heif(io.BytesIO(data)).to_pillow().convert("RGB"))
    payload = sum(len(nal) for nal in nal_units_of_heif(data))
    return {**metrics(reference, decoded, payload), "heif_bytes": len(data)}


def run_heif_psnr_tuned(image: Image.Image, reference: np.ndarray, quality: int) -> dict:
    """HEVC 4:2:0 with the x265 settings nnc uses (no psycho-visual tuning, no adaptive quantisation)."""
    return run_heif(image, reference, quality, X265_PARAMS)


CODECS = {
    "nnc": (run_nnc, [1, 5, 10, 16, 25, 35, 45, 55]),
    "jpeg": (run_jpeg, [5, 10, 20, 35, 50, 70, 85, 95]),
    "hevc420": (run_heif, [1, 10, 20, 30, 40, 50, 60, 70]),
    "hevc420_psnr": (run_heif_psnr_tuned, [1, 10, 20, 30, 40, 50, 60, 70]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parents[2] / "shared/data/kodak"))
    parser.add_argument("--qualities", help="comma-separated nnc qualities")
    parser.add_argument("--limit", type=int, help="only the first N images")
    parser.add_argument("--out", default="benchmarks/results/kodak_rd.json")
    args = parser.parse_args()
    if args.qualities:
        CODECS["nnc"] = (run_nnc, [int(q) for q in args.qualities.split(",")])
    paths = sorted(Path(args.folder).glob("*.png"))[: args.limit]
    images = [(path.name, Image.open(path).convert("RGB")) for path in paths]
    results = {}
    for name, (run, qualities) in CODECS.items():
        curve = []
        for quality in qualities:
            points = [run(image, np.asarray(image), quality) | {"image": image_name}
                      for image_name, image in images]
            summary = {"quality": quality, **{key: float(np.mean([p[key] for p in points]))
                                              for key in ("bpp", "psnr_rgb", "psnr_y")}}
            for key in ("encode_s", "decode_s"):
                if key in points[0]:
                    summary[key + "_median"] = statistics.median(p[key] for p in points)
            if name == "nnc":
                summary["luma_scales"] = {s: sum(p["luma_scale"] == s for p in points) for s in (1, 2, 4)}
                summary["hint_layouts"] = {layout: sum(p["hint_layout"] == layout for p in points)
                                           for layout in ("segments", "grid")}
            if name.startswith("hevc420"):
                summary["heif_bpp"] = float(np.mean([8 * p["heif_bytes"] / (768 * 512) for p in points]))
            curve.append({"summary": summary, "points": points})
            print(name, json.dumps(summary), flush=True)
        results[name] = curve
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def series(codec_name, key="psnr_rgb"):
        return ([c["summary"]["bpp"] for c in results[codec_name]], [c["summary"][key] for c in results[codec_name]])

    for anchor in ("jpeg", "hevc420", "hevc420_psnr"):
        for key in ("psnr_rgb", "psnr_y"):
            print(f"BD-rate nnc vs {anchor} on {key}: {bd_rate(*series(anchor, key), *series('nnc', key)):+.1f} %")
    for rate in (0.05, 0.1, 0.25, 0.5):
        print(f"PSNR-RGB at {rate} bpp: " + ", ".join(
            f"{name} {psnr_at_rate(*series(name), rate):.2f}" for name in CODECS))
    print(f"peak RSS {results['peak_rss_mb']:.0f} MB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
