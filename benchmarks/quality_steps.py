"""Quality step by step: file size and PSNR-RGB of each image at every quality, and every step where either falls.

    python benchmarks/quality_steps.py [FOLDER] [--out benchmarks/results/kodak] [--images N] [--qualities 1-100]
                                       [--against benchmarks/results/kodak/nnc.json] [--jobs 2]

One ``ImageEncoder`` per image (its RGB pixels, without metadata) codes every quality in the
range, coding each candidate once as a ``--target-size`` search does: the same files
``codec.encode`` writes at those qualities. A higher quality should never give a smaller file or a
lower PSNR: each such step is listed. ``--against`` an nnc JSON of ``benchmarks/run.py`` (an
earlier version's run) compares the two at that run's qualities: mean bpp and PSNR-RGB, and the
BD-rate of this version against it. Writes quality_steps.json after each image (a rerun skips
the images it holds for the same qualities and the same nnc: version and model version) and
quality_steps.md in ``--out``. ``--jobs N`` sweeps N images at once, each with one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import codec  # noqa: E402
from codec.pipeline import ImageEncoder  # noqa: E402
from codec.stages import Stages  # noqa: E402
from codec.weights import model_version  # noqa: E402
from metrics import bd_rate  # noqa: E402
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


def sweep(image: Image.Image, qualities: list[int], threads: int | None = None) -> list[dict]:
    """Per quality: bytes, PSNR-RGB (dB) and what the encoder chose."""
    encoder = ImageEncoder(np.asarray(image), stages=Stages(threads=threads))
    rows = []
    for quality in qualities:
        report = encoder.encode(quality)[1]
        rows.append({"quality": quality, "bytes": report.bytes, "psnr": report.psnr,
                     "luma_scale": report.luma_scale, "luma_quality": report.luma_quality,
                     "hints": report.hint_layout, "hint_params": report.hint_params})
    return rows


def nnc_version() -> str:
    """The encoder a sweep measures: nnc's version and the model version it writes."""
    return f"{codec.__version__} {model_version().hex()}"


def sweep_file(path: Path, qualities: list[int], threads: int | None = None) -> dict:
    """One image's sweep: {"rows", "falls", "seconds", "nnc"}."""
    started = time.perf_counter()
    with Image.open(path) as image:
        rows = sweep(image.convert("RGB"), qualities, threads)
    return {"rows": rows, "falls": falls(rows), "seconds": time.perf_counter() - started, "nnc": nnc_version()}


def falls(rows: list[dict]) -> list[dict]:
    """The steps (quality q-1 -> q) where the file gets smaller or the PSNR lower."""
    return [{"from": before["quality"], "to": after["quality"], "bytes": (before["bytes"], after["bytes"]),
             "psnr": (round(before["psnr"], 4), round(after["psnr"], 4))}
            for before, after in zip(rows, rows[1:])
            if after["bytes"] < before["bytes"] or after["psnr"] < before["psnr"]]


def comparison(results: dict, pixels: dict[str, int], earlier: dict) -> list[str]:
    """Markdown lines: per quality of the ``earlier`` run (a benchmarks/run.py nnc JSON) that this
    sweep covers, mean bpp and PSNR-RGB of both over the images both hold, and this sweep's BD-rate
    (PSNR-RGB) against it. pixels: image name -> W * H."""
    points = [p for p in earlier["points"] if p["image"] in results]
    swept = {name: {row["quality"]: row for row in result["rows"]} for name, result in results.items()}
    qualities = sorted({p["quality"] for p in points if all(p["quality"] in swept[p["image"]] for p in points)})
    images = sorted({p["image"] for p in points})
    if len(qualities) < 2:
        return []
    old, new = [], []
    for quality in qualities:
        at = [p for p in points if p["quality"] == quality]
        old.append((np.mean([p["bpp"]["file"] for p in at]), np.mean([p["psnr_rgb"] for p in at])))
        rows = [swept[name][quality] for name in images]
        new.append((np.mean([8 * row["bytes"] / pixels[name] for name, row in zip(images, rows)]),
                    np.mean([row["psnr"] for row in rows])))
    rate = bd_rate([o[0] for o in old], [o[1] for o in old], [n[0] for n in new], [n[1] for n in new])
    version = earlier.get("versions", {}).get("nnc", "earlier")
    lines = ["", f"Against nnc {version} ({len(images)} images, its qualities): BD-rate (PSNR-RGB) {rate:+.2f} %.", "",
             f"| quality | bpp, nnc {version} | bpp, this | PSNR-RGB, nnc {version} | PSNR-RGB, this |",
             "|---|---|---|---|---|"]
    lines += [f"| {q} | {o[0]:.4f} | {n[0]:.4f} | {o[1]:.2f} | {n[1]:.2f} |" for q, o, n in zip(qualities, old, new)]
    return lines


def _jobs(text: str) -> int:
    """A job count: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--jobs wants a whole number of at least 1, not {text!r}")
    return int(text)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qualities", type=_range, default=_range("1-100"), help="a range of qualities, e.g. 1-40")
    parser.add_argument("--against", type=Path, help="an earlier nnc JSON of benchmarks/run.py to compare with")
    parser.add_argument("--jobs", type=_jobs, default=1, help="images swept at once (each with one torch thread)")


def main(argv: list[str] | None = None) -> None:
    args, paths = stage_benchmark_arguments(__doc__.splitlines()[0], argv, more=_options)
    saved = args.out / "quality_steps.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [path for path in paths  # not measured by an earlier run of this nnc at these qualities
            if [row["quality"] for row in results.get(path.name, {}).get("rows", [])] != args.qualities
            or results[path.name].get("nnc") != nnc_version()]

    def save(path: Path, result: dict) -> None:
        results[path.name] = result
        print(f"{path.name}: {len(result['falls'])} falls, {result['seconds']:.0f} s", file=sys.stderr, flush=True)
        saved.write_text(json.dumps(results, separators=(",", ":")) + "\n")  # 100 rows an image: compact

    if args.jobs == 1:
        for path in todo:
            save(path, sweep_file(path, args.qualities))
    else:
        with ProcessPoolExecutor(args.jobs) as pool:  # each image saved as soon as it is done
            futures = {pool.submit(sweep_file, path, args.qualities, 1): path for path in todo}
            for future in as_completed(futures):
                save(futures[future], future.result())
    results = {path.name: results[path.name] for path in paths}
    steps = sum(len(result["rows"]) - 1 for result in results.values())
    listed = [(name, fall) for name, result in results.items() for fall in result["falls"]]
    lines = [f"# Quality step by step on {len(results)} images of {args.folder.name}", "",
             f"nnc {nnc_version()} (version, model version).", "",
             f"Qualities {args.qualities[0]}..{args.qualities[-1]}, every step: {len(listed)} of {steps} steps "
             "give a smaller file or a lower PSNR-RGB.", ""]
    if listed:
        lines += ["| image | quality | bytes | PSNR-RGB (dB) |", "|---|---|---|---|"]
        lines += [f"| {name} | {fall['from']} -> {fall['to']} | {fall['bytes'][0]} -> {fall['bytes'][1]} | "
                  f"{fall['psnr'][0]:.4f} -> {fall['psnr'][1]:.4f} |" for name, fall in listed]
    if args.against:
        sizes = {}
        for path in paths:
            with Image.open(path) as image:
                sizes[path.name] = image.width * image.height
        lines += comparison(results, sizes, json.loads(args.against.read_text()))
    (args.out / "quality_steps.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
