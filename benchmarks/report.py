"""The benchmark's summary table (markdown) and rate-distortion plots (PNG)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from metrics import bd_rate, quality_at_rate

ANCHORS = Path(__file__).parents[2] / "shared" / "anchors" / "compressai-kodak"
PUBLISHED = {  # file -> label, drawn as reference curves on Kodak plots
    "bpg_444_x265_ycbcr.json": "BPG 4:4:4",
    "vtm.json": "VTM (VVC)",
    "av1.json": "AV1",
    "compressai-mbt2018-mean_mse_cpu.json": "Minnen 2018 (learned)",
    "compressai-cheng2020-anchor_mse_cpu.json": "Cheng 2020 (learned)",
}
PUBLISHED_DASHES = ["--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3))]
JPEG_SERIES, HEVC_SERIES = "JPEG", "HEVC 4:2:0"
LOW_RATE_BPP = 0.35  # the low-rate range: up to the quality HEVC 4:2:0 reaches at this rate
RATES = (0.05, 0.1, 0.25, 0.5)
KODAK = Path(__file__).parents[2] / "shared" / "data" / "kodak"
RESULTS = Path(__file__).parent / "results" / "kodak"


def stage_benchmark_arguments(description: str, argv: list[str] | None, parts: tuple[str, ...] = (),
                              more: Callable[[argparse.ArgumentParser], None] | None = None,
                              ) -> tuple[argparse.Namespace, list[Path]]:
    """The command line of a stage benchmark (FOLDER, --out, --images N, and --parts if it has
    ``parts``: the measurements to run again, the others kept from its JSON; ``more`` adds the
    benchmark's own options): its arguments (``parts`` as a list) and the PNG images to run on,
    sorted by name."""
    parser = argparse.ArgumentParser(description=description)
    if more is not None:
        more(parser)
    parser.add_argument("folder", nargs="?", type=Path, default=KODAK)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--images", type=int, help="only the first N images")
    if parts:
        parser.add_argument("--parts", type=lambda text: text.split(","), default=list(parts),
                            help=f"comma-separated measurements to run (default: all of {','.join(parts)})")
    args = parser.parse_args(argv)
    return args, sorted(args.folder.glob("*.png"))[:args.images]


def _series(results: dict) -> dict:
    """Series name -> curve (list of per-setting means), over every codec."""
    return {name: curve for result in results.values() for name, curve in result["curves"].items()}


def _xy(curve: list, metric: str) -> tuple[np.ndarray, np.ndarray]:
    points = [(p["bpp"], p[metric]) for p in curve if p[metric] is not None]
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def _bd(curve: list, anchor: list, metric: str, max_quality: float | None = None) -> float:
    rate_a, quality_a = _xy(anchor, metric)
    rate_t, quality_t = _xy(curve, metric)
    if max_quality is not None:
        cap = max_quality
        rate_a, quality_a = _clip_curve(rate_a, quality_a, cap)
        rate_t, quality_t = _clip_curve(rate_t, quality_t, cap)
    return bd_rate(rate_a, quality_a, rate_t, quality_t)


def _clip_curve(rates: np.ndarray, qualities: np.ndarray, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """The curve up to quality ``cap``, ending with its interpolated point at ``cap``."""
    below = qualities <= cap
    if below.all() or not below.any():
        return rates[below], qualities[below]
    order = np.argsort(qualities)
    rate_at_cap = float(np.exp(np.interp(cap, qualities[order], np.log(rates[order]))))
    return np.append(rates[below], rate_at_cap), np.append(qualities[below], cap)


def _fmt(value: float, unit: str = "") -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:+.1f}{unit}" if unit == " %" else \
        f"{value:.2f}{unit}"


def summary_markdown(results: dict) -> str:
    series = _series(results)
    lines = []
    low_caps = {}
    if HEVC_SERIES in series:
        for metric in ("psnr_rgb", "ms_ssim_db"):
            low_caps[metric] = quality_at_rate(*_xy(series[HEVC_SERIES], metric), LOW_RATE_BPP)
    header = ("| codec | lowest bpp | BD-rate vs JPEG, PSNR | vs JPEG, MS-SSIM | vs HEVC, PSNR | vs HEVC, MS-SSIM "
              "| vs HEVC, PSNR, low rates | vs HEVC, MS-SSIM, low rates | "
              + " | ".join(f"PSNR @ {rate}" for rate in RATES) + " | encode s | decode s |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for name, curve in series.items():
        cells = [name, f"{min(p['bpp'] for p in curve):.4f}"]
        for anchor in (JPEG_SERIES, HEVC_SERIES):
            for metric in ("psnr_rgb", "ms_ssim_db"):
                cells.append(_fmt(_bd(curve, series[anchor], metric), " %") if anchor in series else "–")
        for metric in ("psnr_rgb", "ms_ssim_db"):
            cells.append(_fmt(_bd(curve, series[HEVC_SERIES], metric, low_caps.get(metric)), " %")
                         if HEVC_SERIES in series else "–")
        cells += [_fmt(quality_at_rate(*_xy(curve, "psnr_rgb"), rate)) for rate in RATES]
        cells += [f"{np.median([p['encode_s_median'] for p in curve]):.3f}",
                  f"{np.median([p['decode_s_median'] for p in curve]):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "BD-rates: Bjøntegaard delta rate, negative = fewer bits than the anchor at equal quality; "
              "MS-SSIM in dB (-10 log10(1 - MS-SSIM)); low rates: qualities up to what HEVC 4:2:0 reaches at "
              f"{LOW_RATE_BPP} bpp. PSNR over RGB in dB, interpolated in log-rate (– where not reached). "
              "Seconds: median per image."]
    if "nnc" in results:
        lines += ["", "### nnc's choices per quality setting", "",
                  "| quality | bpp | PSNR-RGB | PSNR-Y | luma x1 / x2 / x4 | hints segments / grid | "
                  "luma / hints bytes (mean) |", "|---|---|---|---|---|---|---|"]
        points = results["nnc"]["points"]
        for point in results["nnc"]["curves"]["nnc"]:
            at = [p for p in points if p["quality"] == point["quality"]]
            scales = " / ".join(str(sum(p["luma_scale"] == s for p in at)) for s in (1, 2, 4))
            unfiltered = sum(p["luma_scale"] == 1 and not p.get("luma_loop_filters", True) for p in at)
            scales += f" ({unfiltered} x1 without loop filters)" if unfiltered else ""
            layouts = " / ".join(str(sum(p["hint_layout"] == layout for p in at)) for layout in ("segments", "grid"))
            section = " / ".join(f"{np.mean([p['section_bytes'].get(key, 0) for p in at]):.0f}"
                                 for key in ("luma", "hints"))
            lines.append(f"| {point['quality']} | {point['bpp']:.4f} | {point['psnr_rgb']:.2f} | {point['psnr_y']:.2f} "
                         f"| {scales} | {layouts} | {section} |")
        memory = results["nnc"].get("peak_memory_mb")
        if memory:
            lines += ["", f"nnc peak memory (fresh process, encode + decode at its highest setting): "
                          f"median {np.median(list(memory.values())):.0f} MB, max {max(memory.values()):.0f} MB."]
    ablations = [name for name in results if name.startswith("nnc-baseline-")]
    lines += ["", "### Ablations: bits each learned stage saves", ""]
    if ablations:
        lines += ["| stage switched to its baseline | BD-rate vs nnc, PSNR | vs nnc, MS-SSIM |", "|---|---|---|"]
        for name in ablations:
            curve = next(iter(results[name]["curves"].values()))
            stage = name.removeprefix("nnc-baseline-")
            lines.append(f"| {stage} | {_fmt(_bd(curve, series['nnc'], 'psnr_rgb'), ' %')} "
                         f"| {_fmt(_bd(curve, series['nnc'], 'ms_ssim_db'), ' %')} |")
    else:
        lines.append("No stage has a learned version yet: every stage runs its classical baseline.")
    any_result = next(iter(results.values()))
    lines += ["", f"Dataset {any_result['dataset']} ({len(any_result['images'])} images), nnc "
                  f"{any_result['versions']['nnc']} (sources {any_result['nnc_source']}), "
                  f"{any_result['machine']['cpus']} CPUs, {any_result['machine']['platform']}."]
    older = [f"{name} from nnc {result['versions']['nnc']} (sources {result['nnc_source']})"
             for name, result in results.items() if name.startswith("nnc")
             and (result["versions"]["nnc"], result["nnc_source"]) != (any_result["versions"]["nnc"],
                                                                       any_result["nnc_source"])]
    if older:  # a series kept from an earlier run (its files did not change)
        lines += ["", f"Measured with another nnc: {', '.join(older)}."]
    return "\n".join(lines) + "\n"


def _published_curves() -> dict:
    curves = {}
    for file_name, label in PUBLISHED.items():
        path = ANCHORS / file_name
        if path.exists():
            data = json.loads(path.read_text())["results"]
            ms_ssim = data.get("ms-ssim-rgb")
            curves[label] = {"bpp": data["bpp"], "psnr_rgb": data["psnr-rgb"],
                             "ms_ssim_db": [-10 * np.log10(1 - v) for v in ms_ssim] if ms_ssim else None}
    return curves


def plot(results: dict, out: Path, with_published: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(results)
    published = _published_curves() if with_published else {}
    colors = [color for index, color in enumerate(plt.get_cmap("tab20").colors) if index not in (14, 15)]
    for metric, label, file_name in (("psnr_rgb", "PSNR-RGB (dB)", "rd_psnr.png"),
                                     ("ms_ssim_db", "MS-SSIM (dB)", "rd_msssim.png")):
        figure, axes = plt.subplots(figsize=(9, 6))
        for index, (name, curve) in enumerate(series.items()):
            rates, qualities = _xy(curve, metric)
            if len(rates):
                axes.plot(rates, qualities, marker="o", markersize=3, linewidth=2.2 if name.startswith("nnc") else 1.2,
                          label=name, color=colors[(2 * index) % len(colors)])
        for (name, curve), dashes in zip(published.items(), PUBLISHED_DASHES):
            if curve[metric] is not None:
                axes.plot(curve["bpp"], curve[metric], linestyle=dashes, color="gray", linewidth=1.0,
                          label=f"{name} (published)")
        axes.set_xscale("log")
        axes.set_xlabel("bits per pixel (log scale)")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
        axes.set_title(f"{next(iter(results.values()))['dataset']}: rate-distortion"
                       + (" (gray: published results, CompressAI)" if published else ""))
        figure.tight_layout()
        figure.savefig(out / file_name, dpi=110)
        plt.close(figure)


def write_report(results: dict, out: Path) -> None:
    """summary.md and the two RD plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(summary_markdown(results))
    dataset = next(iter(results.values()))["dataset"]
    plot(results, out, with_published=dataset == "kodak")


def crop_sheet(rows: list[tuple[str, list]], columns: list[str], crop: tuple[int, int, int, int], path: Path) -> Path:
    """One PNG of side-by-side crops, enlarged 2x: a row per (label, images), a column per name in
    ``columns``; crop is (left, top, right, bottom) in the images' pixels. Returns ``path``."""
    from PIL import Image, ImageDraw

    width, height = crop[2] - crop[0], crop[3] - crop[1]
    sheet = Image.new("RGB", (len(columns) * 2 * width, len(rows) * (2 * height + 20)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (label, versions) in enumerate(rows):
        top = row * (2 * height + 20)
        for column, (name, version) in enumerate(zip(columns, versions)):
            tile = version.convert("RGB").crop(crop).resize((2 * width, 2 * height), Image.Resampling.NEAREST)
            sheet.paste(tile, (column * 2 * width, top + 20))
            draw.text((column * 2 * width + 4, top + 4), f"{label}: {name}", fill="black")
    sheet.save(path)
    return path


def held_out_rows(measure: Callable[[np.ndarray], list[dict]], count: int | None = None) -> tuple[list[str], list]:
    """(names, rows per photo): ``measure`` run on the full-size luma ((H, W) float32) of each
    held-out training photo (the one in 20 no network trains on; the first ``count``), with a
    progress line per photo. For design choices of the encoder, judged off the benchmark images."""
    from codec.color import rgb_to_ycbcr
    from codec.training.data import DEFAULT_DATA, is_validation, load_photo, training_photos

    photos = [photo for photo in training_photos(DEFAULT_DATA) if is_validation(photo[0])][:count]
    rows_by_photo = []
    for index, (name, path, k, factor) in enumerate(photos, 1):
        print(f"[{index}/{len(photos)}] {name}", flush=True)
        rows_by_photo.append(measure(rgb_to_ycbcr(load_photo(path, k, factor))[0]))
    return [photo[0] for photo in photos], rows_by_photo
