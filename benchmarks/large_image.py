"""Encode and decode one large photo built by tiling Kodak images; report seconds and peak memory.

Usage: python benchmarks/large_image.py [--width 6000 --height 4000 --quality 30]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
from PIL import Image

import codec

KODAK = Path(__file__).parents[2] / "shared" / "data" / "kodak"


def mosaic(width: int, height: int) -> Image.Image:
    """A (height, width) RGB mosaic of the Kodak images, each 2x upscaled, repeated as needed."""
    tiles = [np.asarray(Image.open(path).convert("RGB").resize((1536, 1024), Image.Resampling.LANCZOS))
             for path in sorted(KODAK.glob("*.png")) if Image.open(path).size == (768, 512)]
    rows = []
    for row in range(-(-height // 1024)):
        rows.append(np.concatenate([tiles[(row * 7 + col) % len(tiles)] for col in range(-(-width // 1536))], axis=1))
    return Image.fromarray(np.ascontiguousarray(np.concatenate(rows, axis=0)[:height, :width]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--quality", type=int, default=30)
    args = parser.parse_args()
    image = mosaic(args.width, args.height)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    data, report = codec.encode_with_report(image, quality=args.quality)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(data)
    decode_seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.width}x{args.height}: {len(data)} bytes, {8 * len(data) / (args.width * args.height):.4f} bpp, "
          f"PSNR {report.psnr:.2f} dB, luma x{report.luma_scale}, {report.hint_layout} hints; "
          f"encode {encode_seconds:.1f} s, decode {decode_seconds:.1f} s; peak RSS {peak_mb:.0f} MB "
          f"(of which {baseline_mb:.0f} MB before encoding, the source mosaic included); decoded {decoded.size}")


if __name__ == "__main__":
    main()
