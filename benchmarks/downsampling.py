"""The encoder's luma downsampling filter, judged by what stage 2 makes of the coded stream.

    python benchmarks/downsampling.py [--photos N] [--out benchmarks/results/train]

The encoder downsamples the luma with Lanczos-3 (``codec.color.downsample``) before coding it at
x2 or x4. This measures other filters in its place on the held-out training photos (the one in 20
of ../shared/data/train that no network is trained on, loaded as the training scripts load them;
not Kodak, so the design choice is not tuned on the benchmark images): each photo's luma
downsampled by every filter, HEVC-coded at x265 qualities 0..40 as the encoder codes it for the
newest release's upscaler (with or without HEVC's loop filters, ``luma_loop_filters``), decoded,
brought back to full size by bicubic and by that upscaler (trained on Lanczos-3 streams of the
other photos), and PSNR-Y (dB) against the full-size luma rounded to 8 bits. Per filter, scale and
upscaler: the mean over the photos of the BD-rate (luma section bytes at equal PSNR-Y) against
Lanczos-3, over every x265 quality and over those up to 16 (the low rates, where the encoder codes
at x2 and x4), and on how many photos Lanczos-3 needs fewer bytes. Writes downsampling.md and
downsampling.json in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from upscale import coded_stream  # noqa: E402

from codec.color import downsample, to_uint8  # noqa: E402
from codec.luma import stream_size  # noqa: E402
from codec.metrics import psnr  # noqa: E402
from codec.models import RELEASES  # noqa: E402
from codec.pipeline import luma_loop_filters  # noqa: E402
from codec.stages import Stages  # noqa: E402
from codec.upscale import apply_upscale  # noqa: E402
from codec.weights import load_model  # noqa: E402
from metrics import bd_rate  # noqa: E402
from report import held_out_rows  # noqa: E402

X265_QUALITIES = tuple(range(0, 44, 4))
LOW_RATE_X265_QUALITY = 16
SCALES = (2, 4)
SHARPEN = 0.3  # amount of the unsharp mask in "lanczos+sharpen"
RESULTS = Path(__file__).parent / "results" / "train"


def _blur(plane: np.ndarray) -> np.ndarray:
    """(h, w) float32 plane smoothed by the separable [1, 2, 1] / 4 kernel, edges repeated."""
    for axis in (0, 1):
        padded = np.pad(plane, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        parts = [np.take(padded, range(i, i + plane.shape[axis]), axis=axis) for i in range(3)]
        plane = (parts[0] + 2 * parts[1] + parts[2]) / 4
    return plane


def _pillow(resample: Image.Resampling) -> Callable[[np.ndarray, int, int], np.ndarray]:
    """A filter resizing a (H, W) float plane to (height, width) float32 with Pillow's ``resample``."""
    def filter_(luma: np.ndarray, height: int, width: int) -> np.ndarray:
        image = Image.fromarray(np.asarray(luma, dtype=np.float32), mode="F")
        return np.asarray(image.resize((width, height), resample), dtype=np.float32)
    return filter_


def _sharpened(luma: np.ndarray, height: int, width: int) -> np.ndarray:
    """Lanczos-3 to (height, width), then an unsharp mask of SHARPEN on the small plane: float32."""
    small = downsample(luma, height, width)
    return small + SHARPEN * (small - _blur(small))


FILTERS = {"lanczos (nnc)": downsample,  # what codec.luma.luma_stream codes
           "bicubic": _pillow(Image.Resampling.BICUBIC),
           "hamming": _pillow(Image.Resampling.HAMMING), "bilinear": _pillow(Image.Resampling.BILINEAR),
           "box": _pillow(Image.Resampling.BOX), "lanczos+sharpen": _sharpened}


def measure(luma: np.ndarray, upscaler: nn.Module) -> list[dict]:
    """One row per filter, scale and x265 quality for a (H, W) float luma plane: the luma section's
    ``bytes`` and the PSNR-Y (dB, against the luma rounded to 8 bits) after ``bicubic`` and after
    the ``learned`` upscaler (the newest release's ``Upscalers``, whose streams it codes as the
    encoder does: ``luma_loop_filters``)."""
    rows = []
    height, width = luma.shape
    original = to_uint8(luma)
    for name, filter_ in FILTERS.items():
        for scale in SCALES:
            stream = to_uint8(filter_(luma, *stream_size(height, width, scale)))
            loop_filters = luma_loop_filters(scale, RELEASES[-1], Stages())
            for x265_quality in X265_QUALITIES:
                decoded, luma_bytes = coded_stream(stream, x265_quality, loop_filters)
                row = {"filter": name, "scale": scale, "x265_quality": x265_quality, "bytes": luma_bytes}
                for upscale, network in (("bicubic", None), ("learned", lambda: upscaler)):
                    output = apply_upscale(decoded, height, width, scale, luma_bytes, network, threads=2)
                    row[upscale] = psnr(original, output)
                rows.append(row)
    return rows


def _curve(rows: list[dict], name: str, scale: int, upscale: str, top: int) -> tuple[list[int], list[float]]:
    """(luma bytes, PSNR-Y) of one photo's rows for a filter, scale and upscaler, x265 qualities up to ``top``."""
    points = [row for row in rows if row["filter"] == name and row["scale"] == scale and row["x265_quality"] <= top]
    return [row["bytes"] for row in points], [row[upscale] for row in points]


def bd_rates(rows_by_photo: list[list[dict]]) -> dict[str, dict]:
    """"filter|xS|upscaler|all" or "...|low" -> {"mean": the mean over the photos of the BD-rate (%)
    against Lanczos-3, "lanczos_better": on how many photos it is positive, "photos": how many
    photos have one (a curve may share no PSNR range with Lanczos-3's)}."""
    table = {}
    for name in FILTERS:
        for scale in SCALES:
            for upscale in ("bicubic", "learned"):
                for label, top in (("all", max(X265_QUALITIES)), ("low", LOW_RATE_X265_QUALITY)):
                    values = np.array([bd_rate(*_curve(rows, "lanczos (nnc)", scale, upscale, top),
                                               *_curve(rows, name, scale, upscale, top)) for rows in rows_by_photo])
                    values = values[np.isfinite(values)]
                    table[f"{name}|x{scale}|{upscale}|{label}"] = {
                        "mean": float(values.mean()) if values.size else float("nan"),
                        "lanczos_better": int((values > 0).sum()), "photos": int(values.size)}
    return table


def _cell(entry: dict) -> str:
    return f"{entry['mean']:+.1f} % ({entry['lanczos_better']}/{entry['photos']})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, help="only the first N held-out photos")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    upscaler_key = RELEASES[-1]["upscale"]
    upscaler = load_model(upscaler_key)
    photos, rows_by_photo = held_out_rows(lambda luma: measure(luma, upscaler), args.photos)
    table = bd_rates(rows_by_photo)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "downsampling.json").write_text(json.dumps(
        {"photos": photos, "upscaler": upscaler_key, "bd_rate": table, "rows": rows_by_photo}, indent=1))
    lines = [f"# Luma downsampling filter, {len(photos)} held-out training photos (`benchmarks/downsampling.py`)",
             "", f"BD-rate (luma bytes at equal PSNR-Y) against Lanczos-3, the encoder's filter, mean over the "
             f"photos; upscaled by bicubic or `{upscaler_key}` (trained on Lanczos-3 streams of the "
             f"other photos). x265 qualities 0-40 (all) and 0-{LOW_RATE_X265_QUALITY} (low). Negative: fewer "
             f"bytes than Lanczos-3. In brackets: on how many photos Lanczos-3 needs fewer bytes.", "",
             "| filter | " + " | ".join(f"x{s} {u} {r}" for s in SCALES for u in ("bicubic", "learned")
                                        for r in ("all", "low")) + " |",
             "|---|" + "---|" * (4 * len(SCALES))]
    for name in FILTERS:
        cells = [_cell(table[f"{name}|x{s}|{u}|{r}"]) for s in SCALES for u in ("bicubic", "learned")
                 for r in ("all", "low")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (args.out / "downsampling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
