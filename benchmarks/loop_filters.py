"""HEVC's loop filters (deblocking, SAO) on or off in the x2/x4 luma streams, judged after stage 2.

    python benchmarks/loop_filters.py [--photos N] [--out benchmarks/results/train]

In intra coding HEVC's deblocking filter and SAO only shape the decoded picture (prediction reads
unfiltered samples), so a network after them may replace them: the encoder codes x2/x4 luma
without them for an upscaler trained on such streams (``ModelSpec.loop_filters``). This measures
that choice on the held-out training photos (as ``benchmarks/downsampling.py``; not Kodak): each
photo's luma stream at x2 and x4, HEVC-coded at x265 qualities 0..40 with the filters and
without, decoded, brought to full size by bicubic, by the upscaler of streams with filters
(``--with``) and by the one of streams without (``--without``; by default the newest of each,
released if one is: ``newest_upscaler``), PSNR-Y against the full-size
luma rounded to 8 bits. Per scale: the mean over the photos of the BD-rate (luma section bytes at
equal PSNR-Y) of each way without filters against the same upscaler with them, and of the
pipeline without filters against the one with (the encoder's two choices), over every x265
quality and up to 16 (the low rates), with on how many photos the filters need fewer bytes.
Writes loop_filters.md and loop_filters.json in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from upscale import coded_stream, newest_upscaler  # noqa: E402

from codec.color import to_uint8  # noqa: E402
from codec.luma import luma_stream  # noqa: E402
from codec.metrics import psnr  # noqa: E402
from codec.upscale import apply_upscale  # noqa: E402
from codec.weights import load_model  # noqa: E402
from metrics import bd_rate  # noqa: E402
from report import held_out_rows  # noqa: E402

X265_QUALITIES = tuple(range(0, 44, 4))
LOW_RATE_X265_QUALITY = 16
SCALES = (2, 4)
RESULTS = Path(__file__).parent / "results" / "train"
# (label, filters of the test curve, its upscaler, filters of the reference curve, its upscaler)
COMPARISONS = (("bicubic", False, "bicubic", True, "bicubic"),
               ("upscaler with filters", False, "with", True, "with"),
               ("upscaler without filters", False, "without", True, "without"),
               ("encoder's choice", False, "without", True, "with"))


def measure(luma: np.ndarray, upscalers: dict[str, torch.nn.Module]) -> list[dict]:
    """One row per scale, x265 quality and filter setting for a (H, W) float luma plane: the luma
    section's ``bytes`` and the PSNR-Y (dB) after ``bicubic`` and after each of ``upscalers``
    ("with", "without": Upscalers)."""
    rows = []
    height, width = luma.shape
    original = to_uint8(luma)
    for scale in SCALES:
        stream = luma_stream(luma, scale)
        for x265_quality in X265_QUALITIES:
            for filters in (True, False):
                decoded, luma_bytes = coded_stream(stream, x265_quality, filters)
                row = {"scale": scale, "x265_quality": x265_quality, "filters": filters, "bytes": luma_bytes,
                       "bicubic": psnr(original, apply_upscale(decoded, height, width, scale, luma_bytes))}
                for name, network in upscalers.items():
                    row[name] = psnr(original, apply_upscale(decoded, height, width, scale, luma_bytes,
                                                             lambda network=network: network, threads=2))
                rows.append(row)
    return rows


def _curve(rows: list[dict], scale: int, filters: bool, upscale: str, top: int) -> tuple[list[int], list[float]]:
    """(luma bytes, PSNR-Y) of one photo's rows for a scale, filter setting and upscaler, x265
    qualities up to ``top``."""
    points = [row for row in rows if row["scale"] == scale and row["filters"] == filters
              and row["x265_quality"] <= top]
    return [row["bytes"] for row in points], [row[upscale] for row in points]


def bd_rates(rows_by_photo: list[list[dict]]) -> dict[str, dict]:
    """"label|xS|all" or "...|low" -> {"mean": the mean over the photos of the BD-rate (%) of the
    comparison's test curve against its reference, "filters_better": on how many photos it is
    positive, "photos": how many have one}."""
    table = {}
    for label, test_filters, test_upscale, reference_filters, reference_upscale in COMPARISONS:
        for scale in SCALES:
            for span, top in (("all", max(X265_QUALITIES)), ("low", LOW_RATE_X265_QUALITY)):
                values = np.array([bd_rate(*_curve(rows, scale, reference_filters, reference_upscale, top),
                                           *_curve(rows, scale, test_filters, test_upscale, top))
                                   for rows in rows_by_photo])
                values = values[np.isfinite(values)]
                table[f"{label}|x{scale}|{span}"] = {
                    "mean": float(values.mean()) if values.size else float("nan"),
                    "filters_better": int((values > 0).sum()), "photos": int(values.size)}
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, help="only the first N held-out photos")
    parser.add_argument("--with", dest="with_filters", help="registry key of the upscaler of streams with filters")
    parser.add_argument("--without", help="registry key of the upscaler of streams without filters")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    keys = {"with": args.with_filters or newest_upscaler(loop_filters=True),
            "without": args.without or newest_upscaler(loop_filters=False)}
    upscalers = {name: load_model(key) for name, key in keys.items()}
    photos, rows_by_photo = held_out_rows(lambda luma: measure(luma, upscalers), args.photos)
    table = bd_rates(rows_by_photo)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "loop_filters.json").write_text(json.dumps(
        {"photos": photos, "upscalers": keys, "bd_rate": table, "rows": rows_by_photo}, indent=1))
    lines = [f"# HEVC's loop filters in the x2/x4 luma streams, {len(photos)} held-out training photos "
             "(`benchmarks/loop_filters.py`)", "",
             f"BD-rate (luma bytes at equal PSNR-Y) of streams coded without HEVC's deblocking and SAO against "
             f"streams coded with them, mean over the photos; negative: fewer bytes without. Upscaler of "
             f"streams with filters: `{keys['with']}`; without: `{keys['without']}`. \"encoder's choice\": "
             f"without filters and `{keys['without']}` against with filters and `{keys['with']}`. x265 "
             f"qualities 0-40 (all) and 0-{LOW_RATE_X265_QUALITY} (low). In brackets: on how many photos the "
             "filters need fewer bytes.", "",
             "| upscaling | " + " | ".join(f"x{s} {span}" for s in SCALES for span in ("all", "low")) + " |",
             "|---|" + "---|" * (2 * len(SCALES))]
    for label, *_ in COMPARISONS:
        cells = [table[f"{label}|x{s}|{span}"] for s in SCALES for span in ("all", "low")]
        lines.append(f"| {label} | " + " | ".join(f"{c['mean']:+.1f} % ({c['filters_better']}/{c['photos']})"
                                                  for c in cells) + " |")
    (args.out / "loop_filters.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
