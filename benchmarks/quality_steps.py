"""Quality step by step: file size and PSNR-RGB of each image at every quality, and every step where either falls.

    python benchmarks/quality_steps.py [FOLDER] [--out benchmarks/results/kodak] [--images N] [--qualities 1-100]

One ``ImageEncoder`` per image (its RGB pixels, without metadata) codes every quality in the
range, coding each candidate once as a ``--target-size`` search does: the same files
``codec.encode`` writes at those qualities. A higher quality should never give a smaller file or a
lower PSNR: each such step is listed. Writes quality_steps.json after each image (a rerun skips
the images it holds for the same qualities) and quality_steps.md in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from codec.pipeline import ImageEncoder  # noqa: E402
from report import stage_benchmark_arguments  # noqa: E402


def _range(text: str) -> list[int]:
    """"A-B" (or "A") -> the qualities A..B, within 1..100."""
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a range of qualities: {text!r}") from None
    if not 1 <= first <= last <= 100:
        raise argparse.ArgumentTypeError(f"qualities {text} are not a range within 1..100")
    return list(range(first, last + 1))


def sweep(image: Image.Image, qualities: list[int]) -> list[dict]:
    """Per quality: bytes, PSNR-RGB (dB) and what the encoder chose."""
    encoder = ImageEncoder(np.asarray(image))
    rows = []
    for quality in qualities:
        report = encoder.encode(quality)[1]
        rows.append({"quality": quality, "bytes": report.bytes, "psnr": report.psnr,
                     "luma_scale": report.luma_scale, "luma_quality": report.luma_quality,
                     "hints": report.hint_layout, "hint_params": report.hint_params})
    return rows


def falls(rows: list[dict]) -> list[dict]:
    """The steps (quality q-1 -> q) where the file gets smaller or the PSNR lower."""
    return [{"from": before["quality"], "to": after["quality"], "bytes": (before["bytes"], after["bytes"]),
             "psnr": (round(before["psnr"], 4), round(after["psnr"], 4))}
            for before, after in zip(rows, rows[1:])
            if after["bytes"] < before["bytes"] or after["psnr"] < before["psnr"]]


def main(argv: list[str] | None = None) -> None:
    args, paths = stage_benchmark_arguments(__doc__.splitlines()[0], argv, more=lambda parser: parser.add_argument(
        "--qualities", type=_range, default=_range("1-100"), help="a range of qualities, e.g. 1-40"))
    saved = args.out / "quality_steps.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    args.out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if [row["quality"] for row in results.get(path.name, {}).get("rows", [])] == args.qualities:
            continue  # measured by an earlier run
        started = time.perf_counter()
        with Image.open(path) as image:
            rows = sweep(image.convert("RGB"), args.qualities)
        results[path.name] = {"rows": rows, "falls": falls(rows), "seconds": time.perf_counter() - started}
        print(f"{path.name}: {len(results[path.name]['falls'])} falls, {results[path.name]['seconds']:.0f} s",
              file=sys.stderr, flush=True)
        saved.write_text(json.dumps(results, indent=1) + "\n")
    results = {path.name: results[path.name] for path in paths}
    steps = sum(len(result["rows"]) - 1 for result in results.values())
    listed = [(name, fall) for name, result in results.items() for fall in result["falls"]]
    lines = [f"# Quality step by step on {len(results)} images of {args.folder.name}", "",
             f"Qualities {args.qualities[0]}..{args.qualities[-1]}, every step: {len(listed)} of {steps} steps "
             "give a smaller file or a lower PSNR-RGB.", ""]
    if listed:
        lines += ["| image | quality | bytes | PSNR-RGB (dB) |", "|---|---|---|---|"]
        lines += [f"| {name} | {fall['from']} -> {fall['to']} | {fall['bytes'][0]} -> {fall['bytes'][1]} | "
                  f"{fall['psnr'][0]:.4f} -> {fall['psnr'][1]:.4f} |" for name, fall in listed]
    (args.out / "quality_steps.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
