"""The upscaler (decoder stage 2) on its own: PSNR-Y over bicubic, scale crossovers, looks, timing, crops.

    python benchmarks/upscale.py [FOLDER] [--out benchmarks/results/kodak] [--images N]

1. PSNR-Y of every image's luma at x2 and x4: bicubic, the fidelity net and (if released) the
   perceptual one, on the clean downsampled stream and on the stream HEVC-coded at the x265
   quality the encoder tries at nnc qualities 1, 5, 10 and 20, coded as the encoder codes it for
   each (for bicubic with HEVC's loop filters; for an upscaler trained on streams without them,
   without: bicubic and learned may then differ in luma bpp); the gradient-energy ratio of
   each output to the original (1 is as detailed as the original, below 1 blurred) and the
   strength of a grid of the scale's period in its error (levels, ``metrics.grid_strength``);
   for the perceptual look, the pattern of the scale's period it adds to the fidelity output
   along rows and columns (dots along edges), and the same at another period as a control.
2. Luma alone, at equal luma bits: mean rate-PSNR-Y curves of x1, x2 (bicubic and learned) and x4
   over a grid of x265 qualities, and the bits per pixel below which x2 beats x1 (crossover).
3. Seconds (median of 5, 2 threads) of stage 2 alone: x2 of a 384x256 stream, x4 of a 192x128 one.
4. Crops of the first image (original | bicubic | fidelity | perceptual) at nnc qualities 1, 5, 10.
Writes upscale.md, upscale.json and upscale_crops.png in ``--out``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import codec  # noqa: E402
from codec import format, hevc  # noqa: E402
from codec.color import rgb_to_ycbcr, to_uint8, upsample_bicubic  # noqa: E402
from codec.luma import luma_stream  # noqa: E402
from codec.metrics import gradient_energy, grid_strength, psnr  # noqa: E402
from codec.models import LOOKS, REGISTRY, RELEASES  # noqa: E402
from codec.pipeline import luma_loop_filters, x265_qualities  # noqa: E402
from codec.stages import Stages  # noqa: E402
from codec.upscale import apply_upscale  # noqa: E402
from codec.weights import load_model  # noqa: E402
from report import crop_sheet, stage_benchmark_arguments  # noqa: E402

NNC_QUALITIES = (1, 5, 10, 20)
CURVE_X265_QUALITIES = {1: (0, 5, 10, 15, 20, 25, 30, 40), 2: (0, 5, 10, 15, 20, 25, 30, 40, 50),
                        4: (0, 5, 10, 15, 20, 25, 30, 40)}
CROP_QUALITIES = (1, 5, 10)
CROP = (300, 180, 492, 372)  # (left, top, right, bottom) of the crop shown, full-size pixels


def _networks() -> dict[str, object]:
    """look -> the newest release's Upscalers of that look."""
    key = RELEASES[-1]["upscale"]
    return {"fidelity": load_model(key), **{look: load_model(other) for look, other in LOOKS.get(key, {}).items()}}


def newest_upscaler(loop_filters: bool) -> str:
    """The registry key of the newest upscaler (in a release, if one is) that reads streams with
    (or without) HEVC's loop filters; SystemExit if none does."""
    candidates = sorted((key for key in REGISTRY if key.startswith("upscale-")
                         and REGISTRY[key].loop_filters == loop_filters), key=lambda key: int(key.split("-v")[1]))
    if not candidates:
        raise SystemExit(f"no registered upscaler reads streams {'with' if loop_filters else 'without'} loop filters")
    released = [release["upscale"] for release in RELEASES if release.get("upscale") in candidates]
    return (released or candidates)[-1]


def coded_stream(stream: np.ndarray, x265_quality: int, loop_filters: bool = True) -> tuple[np.ndarray, int]:
    """The stream HEVC-coded at ``x265_quality`` (with or without HEVC's loop filters), decoded, and
    its luma section's bytes."""
    tiles = hevc.encode_plane(stream, x265_quality, loop_filters)
    return hevc.decode_plane(tiles, *stream.shape), len(format.build_hevc_plane(tiles))


def coded_streams(stream: np.ndarray, scale: int, x265_quality: int) -> dict[str, tuple[np.ndarray, int]]:
    """{"bicubic": ..., "learned": ...}: (decoded stream, luma bytes) of a stream at ``scale``, coded at
    ``x265_quality`` as the encoder codes it for bicubic upscaling (``--baseline upscale``) and for
    the newest release's upscaler (``luma_loop_filters``); coded once where the two agree."""
    settings = {"bicubic": luma_loop_filters(scale, RELEASES[-1], Stages(frozenset({"upscale"}))),
                "learned": luma_loop_filters(scale, RELEASES[-1], Stages())}
    coded = {filters: coded_stream(stream, x265_quality, filters) for filters in set(settings.values())}
    return {kind: coded[filters] for kind, filters in settings.items()}


def _outputs(streams: dict[str, tuple[np.ndarray, int]], shape: tuple[int, int], scale: int,
             networks: dict) -> dict:
    """Each look's upscaled luma: bicubic of the ``bicubic`` stream, the networks' of the ``learned`` one."""
    outputs = {"bicubic": upsample_bicubic(streams["bicubic"][0], *shape)}
    stream, luma_bytes = streams["learned"]
    for look, network in networks.items():
        outputs[look] = apply_upscale(stream, *shape, scale, luma_bytes, lambda network=network: network, 2)
    return outputs


def psnr_rows(lumas: list[np.ndarray], networks: dict) -> list[dict]:
    """Per scale and input (clean, or coded at the x265 quality of an nnc quality): mean PSNR-Y, detail
    ratio and grid strength; for each look but fidelity, the pattern it adds to the fidelity look's
    output, measured along rows and columns ("<look> added line grid"), and the same at the period
    scale + 1 ("<look> added line control": what any texture added, no pattern, measures)."""
    rows = []
    for scale in (2, 4):
        inputs = [("clean", None)] + [(f"nnc q{q}", q) for q in NNC_QUALITIES]
        for label, quality in inputs:
            scores: dict[str, list[float]] = {}
            for luma in lumas:
                stream = luma_stream(luma, scale)
                if quality is None:  # 8 bits per sample: the condition of an uncoded stream
                    streams = dict.fromkeys(("bicubic", "learned"), (stream, stream.size))
                else:
                    x265_options = x265_qualities(quality, scale.bit_length() - 1, False)
                    streams = coded_streams(stream, scale, x265_options[len(x265_options) // 2])
                for kind, (_, luma_bytes) in streams.items():
                    scores.setdefault(f"{kind} bpp", []).append(8 * luma_bytes / luma.size)
                original = to_uint8(luma)
                outputs = _outputs(streams, luma.shape, scale, networks)
                for look, output in outputs.items():
                    scores.setdefault(look, []).append(psnr(original, output))
                    scores.setdefault(f"{look} detail", []).append(gradient_energy(output) / gradient_energy(original))
                    scores.setdefault(f"{look} grid", []).append(grid_strength(original, output, scale))
                    if look not in ("bicubic", "fidelity"):
                        scores.setdefault(f"{look} added line grid", []).append(
                            grid_strength(outputs["fidelity"], output, scale, lines=True))
                        scores.setdefault(f"{look} added line control", []).append(
                            grid_strength(outputs["fidelity"], output, scale + 1, lines=True))
            rows.append({"scale": scale, "input": label, **{k: float(np.mean(v)) for k, v in scores.items()}})
            print(f"x{scale} {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()
                                                     if isinstance(v, float)), file=sys.stderr)
    return rows


def curves(lumas: list[np.ndarray], networks: dict) -> dict:
    """Mean (luma bpp, PSNR-Y) per x265 quality for x1, x2 and x4, bicubic and learned; x2/x1 crossovers."""
    result: dict[str, list[tuple[float, float]]] = {}
    for scale, grid in CURVE_X265_QUALITIES.items():
        for x265_quality in grid:
            points: dict[str, list[tuple[float, float]]] = {}
            for luma in lumas:
                original = to_uint8(luma)
                if scale == 1:
                    stream, luma_bytes = coded_stream(luma_stream(luma, scale), x265_quality)
                    points.setdefault("x1", []).append((8 * luma_bytes / luma.size, psnr(original, stream)))
                    continue
                streams = coded_streams(luma_stream(luma, scale), scale, x265_quality)
                outputs = _outputs(streams, luma.shape, scale, {"fidelity": networks["fidelity"]})
                for look, output in outputs.items():
                    luma_bytes = streams["bicubic" if look == "bicubic" else "learned"][1]
                    points.setdefault(f"x{scale} {look}", []).append((8 * luma_bytes / luma.size,
                                                                      psnr(original, output)))
            for name, values in points.items():
                result.setdefault(name, []).append(tuple(np.mean(values, axis=0).tolist()))
    crossovers = {look: crossover_bpp(result["x1"], result[f"x2 {look}"]) for look in ("bicubic", "fidelity")}
    crossovers.update({f"x4 {look}": crossover_bpp(result[f"x2 {look}"], result[f"x4 {look}"])
                       for look in ("bicubic", "fidelity")})
    return {"curves": result, "crossover_bpp": crossovers}


def crossover_bpp(fine: list[tuple[float, float]], coarse: list[tuple[float, float]]) -> float | None:
    """The bpp below which the ``coarse`` curve (PSNR at equal bpp, log-bpp interpolation) beats ``fine``."""
    fine_bpp, fine_psnr = np.log([p[0] for p in fine]), [p[1] for p in fine]
    grid = np.linspace(max(min(fine_bpp), np.log(min(p[0] for p in coarse))),
                       min(max(fine_bpp), np.log(max(p[0] for p in coarse))), 400)
    if len(grid) == 0 or grid[0] >= grid[-1]:
        return None
    difference = (np.interp(grid, np.log([p[0] for p in coarse]), [p[1] for p in coarse])
                  - np.interp(grid, fine_bpp, fine_psnr))
    losing = np.nonzero(difference < 0)[0]
    if len(losing) == 0:
        return float(np.exp(grid[-1]))  # coarse wins over the whole common range
    if losing[0] == 0:
        return None  # fine wins everywhere
    return float(np.exp(grid[losing[0]]))


def timing(networks: dict) -> dict:
    """Median seconds of stage 2 alone on 2 threads: x2 of a 384x256 stream, x4 of a 192x128 one."""
    rng = np.random.default_rng(0)
    seconds = {}
    for scale, (height, width) in ((2, (256, 384)), (4, (128, 192))):
        stream = upsample_bicubic(rng.integers(0, 256, (height // 8, width // 8), dtype=np.uint8), height, width)
        runs = []
        for _ in range(6):
            start = time.perf_counter()
            apply_upscale(stream, scale * height, scale * width, scale, height * width // 40,
                          lambda: networks["fidelity"], 2)
            runs.append(time.perf_counter() - start)
        seconds[f"x{scale} {width}x{height}"] = statistics.median(runs[1:])
    return seconds


def crops(image: Image.Image, looks: list[str], out: Path) -> Path:
    """One PNG: a row per nnc quality; columns original, bicubic, then each look of the learned upscaler."""
    rows = []
    for quality in CROP_QUALITIES:
        data = codec.encode(image, quality=quality)
        versions = [image, codec.decode(data, baseline=("upscale",))]
        versions += [codec.decode(data, look=look) for look in looks]
        rows.append((f"q{quality}, {len(data)} bytes, luma x{codec.info(data)['luma_scale']}", versions))
    return crop_sheet(rows, ["original", "bicubic", *looks], CROP, out / "upscale_crops.png")


def main(argv: list[str] | None = None) -> None:
    args, paths = stage_benchmark_arguments(__doc__.splitlines()[0], argv)
    images = [Image.open(path).convert("RGB") for path in paths]
    lumas = [rgb_to_ycbcr(np.asarray(image))[0] for image in images]
    networks = _networks()
    results = {"images": len(images), "psnr": psnr_rows(lumas, networks), **curves(lumas, networks),
               "timing_s": timing(networks)}
    args.out.mkdir(parents=True, exist_ok=True)
    crops(images[0], list(networks), args.out)
    (args.out / "upscale.json").write_text(json.dumps(results, indent=1) + "\n")
    looks = list(networks)
    added = [look for look in looks if look != "fidelity"]
    lines = [f"# Upscaler (stage 2) on {len(images)} images of {args.folder.name}", "",
             "Mean PSNR-Y (dB) of the luma upscaled from its stream, coded as the encoder codes it for each "
             "(the luma bpp of each; where they differ, the gain compares different streams); in brackets the "
             "gradient energy of the output over the original's (detail kept: 1 = as much as the original), "
             "and the grid in its error (levels: the RMS of the error's mean per phase of the scale's period). "
             "Added along lines: that grid measured along each row and column of a look's output against the "
             "fidelity look's (levels): the dots a look adds along edges, whose sign changes from row to row, "
             "cancel out over the whole image but not along a line; in brackets the same at a period of scale "
             "+ 1, a control: what the texture a look adds measures where it has no pattern of the scale's "
             "period.", "",
             "| scale | input | luma bpp (bicubic / learned) | bicubic | "
             + " | ".join([*looks, "gain (fidelity)", *(f"{look}: added along lines" for look in added)]) + " |",
             "|---|---|---|---|" + "---|" * (len(looks) + len(added)) + "---|"]
    for row in results["psnr"]:
        cells = [f"{row[look]:.2f} ({row[f'{look} detail']:.2f}, {row[f'{look} grid']:.2f})"
                 for look in ("bicubic", *looks)]
        lines.append(f"| x{row['scale']} | {row['input']} | {row['bicubic bpp']:.4f} / {row['learned bpp']:.4f} | "
                     + " | ".join([*cells, f"{row['fidelity'] - row['bicubic']:+.2f}",
                                   *(f"{row[f'{look} added line grid']:.2f} ({row[f'{look} added line control']:.2f})"
                                     for look in added)]) + " |")
    crossover = results["crossover_bpp"]
    lines += ["", "Luma alone at equal bits (x265 quality grids, mean over the images), the luma bpp below which "
              "x2 beats x1: " + ", ".join(f"{_bpp(crossover[look])} with {look} upscaling"
                                          for look in ("bicubic", "fidelity"))
              + "; below which x4 beats x2: " + ", ".join(f"{_bpp(crossover[f'x4 {look}'])} ({look})"
                                                          for look in ("bicubic", "fidelity"))
              + " (none: not in the range both curves cover).", "",
              "Stage 2 alone, median seconds on 2 threads: "
              + ", ".join(f"{name}: {seconds:.3f} s" for name, seconds in results["timing_s"].items()) + ".", "",
              "![original | bicubic | " + " | ".join(looks) + "](upscale_crops.png)", ""]
    (args.out / "upscale.md").write_text("\n".join(lines))
    print("\n".join(lines))


def _bpp(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
