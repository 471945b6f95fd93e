"""The benchmark's CI-size mode runs end to end, so the benchmark code cannot rot."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec.color import rgb_to_ycbcr, to_uint8
from codec.luma import luma_stream, stream_size
from conftest import SAMPLE_PHOTO, synthetic_rgb

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_module():
    sys.path.insert(0, str(BENCHMARKS))
    import run

    yield run
    sys.path.remove(str(BENCHMARKS))


def test_small_benchmark_writes_results_and_resumes_from_its_cache(tmp_path, run_module, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    shutil.copy(SAMPLE_PHOTO, images / "a.png")
    Image.fromarray(synthetic_rgb(300, 280)).save(images / "b.png")
    (images / "broken.png").write_bytes(b"not an image")
    arguments = [str(images), "--small", "--codecs", "nnc,jpeg,hevc420,webp",
                 "--out", str(tmp_path / "results"), "--cache", str(tmp_path / "cache")]
    run_module.main(arguments)
    out = tmp_path / "results" / "photos-small"
    assert "skipping broken.png" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["nnc.json", "jpeg.json", "hevc420.json", "webp.json", "summary.md", "rd_psnr.png", "rd_msssim.png"])
    nnc = json.loads((out / "nnc.json").read_text())
    assert len(nnc["points"]) == 2 * 3 and nnc["images"] == ["a.png", "b.png"]
    assert all(0 < p["bpp"]["file"] < 8 and p["psnr_rgb"] > 15 and 0 < p["ms_ssim"] <= 1 for p in nnc["points"])
    summary = (out / "summary.md").read_text()
    assert "| nnc |" in summary and "| HEVC 4:2:0 |" in summary and "| HEIF 4:2:0 (.heic) |" in summary

    run_module.main(arguments)  # every point now comes from the cache: the same numbers, timings included
    assert json.loads((out / "nnc.json").read_text())["points"] == nnc["points"]
    assert "Measured with another nnc" not in summary

    kept = {**nnc, "versions": {**nnc["versions"], "nnc": "0.0.1"}, "nnc_source": "0123456789ab"}
    (out / "nnc-baseline-color.json").write_text(json.dumps(kept))  # an ablation kept from an older run
    run_module.write_folder_report(out)
    summary = (out / "summary.md").read_text()
    assert "| color |" in summary
    assert "Measured with another nnc: nnc-baseline-color from nnc 0.0.1 (sources 0123456789ab)." in summary


def test_scale_crossover_is_where_the_coarser_curve_stops_winning(run_module):
    import upscale

    fine = [(0.02, 20.0), (0.05, 24.0), (0.1, 28.0), (0.2, 32.0)]
    coarse = [(0.02, 22.0), (0.05, 25.0), (0.1, 27.0), (0.2, 29.0)]  # better below ~0.07 bpp only
    crossover = upscale.crossover_bpp(fine, coarse)
    assert 0.05 < crossover < 0.1
    assert upscale.crossover_bpp(fine, [(b, p - 5) for b, p in coarse]) is None  # never better
    assert upscale.crossover_bpp(fine, [(b, p + 5) for b, p in coarse]) == pytest.approx(0.2)  # always better


def test_equal_bytes_curves_keep_only_points_nothing_cheaper_beats(run_module):
    import colorize

    points = [(300, 38.0), (100, 35.0), (200, 34.0), (250, 39.0), (120, 36.5)]
    assert colorize._upper_hull(points) == [(100, 35.0), (120, 36.5), (250, 39.0)]
    assert colorize._upper_hull([(100, 35.0), (100, 34.0), (100, 36.0)]) == [(100, 36.0)]


def test_the_colorizer_benchmark_measures_equal_bytes_and_timing(run_module, monkeypatch):
    """Its curves run the release's networks through the decoder's own functions (a small image,
    two x265 qualities): every series gets a BD-rate; stage 3 is timed at both thumbnail sizes."""
    import colorize

    monkeypatch.setattr(colorize, "CURVE_X265_QUALITIES", (10, 40))
    image = Image.fromarray(synthetic_rgb(64, 96, seed=3))
    summary = colorize.equal_bytes([image])
    assert set(summary) == {"learned all", "learned low", "nnc all", "nnc low"}
    assert np.isfinite(summary["nnc all"]["mean"]) and np.isfinite(summary["learned all"]["mean"])
    assert colorize.timing(1) > 0 and colorize.timing(2) > 0


def test_quality_steps_lists_every_step_where_size_or_psnr_falls(run_module, tmp_path):
    import quality_steps

    rows = [{"quality": q, "bytes": size, "psnr": value}
            for q, size, value in [(1, 100, 20.0), (2, 100, 20.0), (3, 99, 21.0), (4, 120, 20.5), (5, 130, 22.0)]]
    assert [(fall["from"], fall["to"]) for fall in quality_steps.falls(rows)] == [(2, 3), (3, 4)]
    Image.fromarray(synthetic_rgb(32, 48, seed=4)).save(tmp_path / "a.png")
    quality_steps.main([str(tmp_path), "--out", str(tmp_path / "out"), "--qualities", "29-31"])
    result = json.loads((tmp_path / "out" / "quality_steps.json").read_text())
    assert [row["quality"] for row in result["a.png"]["rows"]] == [29, 30, 31]
    assert "Qualities 29..31" in (tmp_path / "out" / "quality_steps.md").read_text()
    assert result["a.png"]["nnc"] == quality_steps.nnc_version()
    earlier = {"versions": {"nnc": "0.1"}, "points": [
        {"image": "a.png", "quality": q, "bpp": {"file": 8 * row["bytes"] / (32 * 48) * 1.1}, "psnr_rgb": row["psnr"]}
        for q, row in zip((29, 30, 31), result["a.png"]["rows"])]}  # the same PSNR for 10 % more bits
    lines = quality_steps.comparison(result, {"a.png": 32 * 48}, earlier)
    assert "BD-rate (PSNR-RGB) -9.09 %" in lines[1] and len(lines) == 5 + 3
    for wrong in ("40-1", "0-5", "x"):
        with pytest.raises(SystemExit):
            quality_steps.main([str(tmp_path), "--qualities", wrong])


def test_quality_steps_sweeps_again_what_another_nnc_measured(run_module, tmp_path):
    """A rerun keeps the images this nnc swept and remeasures those of an earlier version (its
    encoder chose otherwise), with two images at once as with ``--jobs 2``."""
    import quality_steps

    for seed, name in ((5, "a.png"), (6, "b.png")):
        Image.fromarray(synthetic_rgb(32, 48, seed=seed)).save(tmp_path / name)
    out = tmp_path / "out"
    quality_steps.main([str(tmp_path), "--out", str(out), "--qualities", "5-6", "--jobs", "2"])
    saved = json.loads((out / "quality_steps.json").read_text())
    measured = json.loads(json.dumps({name: saved[name]["rows"] for name in ("a.png", "b.png")}))
    saved["a.png"]["nnc"] = "0.6.0 8842ad9c"  # an earlier encoder's sweep
    for name in saved:
        for row in saved[name]["rows"]:
            row["bytes"] = -1  # marks the rows kept from the file
    (out / "quality_steps.json").write_text(json.dumps(saved))
    quality_steps.main([str(tmp_path), "--out", str(out), "--qualities", "5-6"])
    again = json.loads((out / "quality_steps.json").read_text())
    assert again["a.png"]["rows"] == measured["a.png"] and again["a.png"]["nnc"] == quality_steps.nnc_version()
    assert [row["bytes"] for row in again["b.png"]["rows"]] == [-1, -1]


def test_downsampling_benchmark_measures_the_encoders_own_filter_as_its_reference(run_module):
    import downsampling

    luma = rgb_to_ycbcr(synthetic_rgb(61, 83))[0]
    for scale in downsampling.SCALES:
        reference = to_uint8(downsampling.FILTERS["lanczos (nnc)"](luma, *stream_size(*luma.shape, scale)))
        assert np.array_equal(reference, luma_stream(luma, scale))


def test_downsampling_bd_rate_is_the_extra_bytes_a_filter_needs_for_lanczos_psnr(run_module):
    import downsampling

    from metrics import bd_rate

    low = downsampling.LOW_RATE_X265_QUALITY

    def curve(extra: float, db: float, top: int) -> tuple[list, list]:
        """(bytes, PSNR-Y) at x265 qualities up to ``top``: ``extra`` times the bytes above the
        low rates, ``db`` more PSNR-Y."""
        qualities = [q for q in downsampling.X265_QUALITIES if q <= top]
        return ([(extra if q > low else 1.0) * 1000 * 2 ** (q / 8) for q in qualities],
                [20 + q / 4 + db for q in qualities])

    def photo(box_extra_x2: float) -> list[dict]:
        """Box needs ``box_extra_x2`` times Lanczos-3's bytes at x2 and 1.2 times at x4 above the
        low rates; the learned upscaler adds 1 dB, but to box's streams only 0.5 dB."""
        rows = []
        for name in downsampling.FILTERS:
            for scale in downsampling.SCALES:
                extra = (box_extra_x2 if scale == 2 else 1.2) if name == "box" else 1.0
                byte_counts, bicubic = curve(extra, 0.0, 100)
                learned = curve(extra, 0.5 if name == "box" else 1.0, 100)[1]
                rows += [{"filter": name, "scale": scale, "x265_quality": q, "bytes": b, "bicubic": p, "learned": d}
                         for q, b, p, d in zip(downsampling.X265_QUALITIES, byte_counts, bicubic, learned)]
        return rows

    table = downsampling.bd_rates([photo(1.1), photo(1.3)])
    top = max(downsampling.X265_QUALITIES)
    x2 = [bd_rate(*curve(1.0, 0.0, top), *curve(extra, 0.0, top)) for extra in (1.1, 1.3)]
    assert 5 < x2[0] < 10 < x2[1]
    assert table["box|x2|bicubic|all"]["mean"] == pytest.approx(sum(x2) / 2)  # the mean over the photos
    assert table["box|x4|bicubic|all"]["mean"] == pytest.approx(bd_rate(*curve(1.0, 0.0, top), *curve(1.2, 0.0, top)))
    assert table["box|x4|learned|all"]["mean"] == pytest.approx(bd_rate(*curve(1.0, 1.0, top), *curve(1.2, 0.5, top)))
    assert table["box|x4|learned|all"]["mean"] > table["box|x4|bicubic|all"]["mean"] + 5
    assert table["box|x2|bicubic|low"]["mean"] == pytest.approx(0, abs=1e-6)  # the extra bytes are all above
    assert table["box|x4|learned|low"]["lanczos_better"] == table["box|x4|learned|low"]["photos"] == 2
    assert table["lanczos (nnc)|x2|learned|all"] == {"mean": 0, "lanczos_better": 0, "photos": 2}


def test_downsampling_benchmark_codes_and_upscales_every_filter(run_module, monkeypatch):
    import downsampling

    from codec.models import RELEASES
    from codec.weights import load_model

    monkeypatch.setattr(downsampling, "X265_QUALITIES", (10, 30))
    rows = downsampling.measure(rgb_to_ycbcr(synthetic_rgb(48, 64))[0], load_model(RELEASES[-1]["upscale"]))
    assert len(rows) == len(downsampling.FILTERS) * len(downsampling.SCALES) * 2
    for row in rows:
        assert row["bytes"] > 0 and 10 < row["bicubic"] < 60 and 10 < row["learned"] < 60
    finer = {(row["filter"], row["scale"]): row["bytes"] for row in rows if row["x265_quality"] == 30}
    assert all(finer[row["filter"], row["scale"]] > row["bytes"] for row in rows if row["x265_quality"] == 10)


def test_loop_filter_bd_rate_compares_each_upscaler_and_the_encoders_two_choices(run_module):
    import loop_filters

    from metrics import bd_rate

    top, low = max(loop_filters.X265_QUALITIES), loop_filters.LOW_RATE_X265_QUALITY
    gains = {True: {"bicubic": 0.0, "with": 1.0, "without": 0.5}, False: {"bicubic": 0.0, "with": 0.4, "without": 1.2}}

    def curve(share: float, db: float, last: int) -> tuple[list, list]:
        qualities = [q for q in loop_filters.X265_QUALITIES if q <= last]
        return [share * 1000 * 2 ** (q / 8) for q in qualities], [20 + q / 4 + db for q in qualities]

    def photo(share: float) -> list[dict]:
        """Streams without the filters take ``share`` of the bytes of those with them."""
        rows = []
        for scale in loop_filters.SCALES:
            for filters in (True, False):
                byte_counts, psnrs = curve(1.0 if filters else share, 0.0, top)
                rows += [{"scale": scale, "x265_quality": q, "filters": filters, "bytes": b,
                          **{name: p + gain for name, gain in gains[filters].items()}}
                         for q, b, p in zip(loop_filters.X265_QUALITIES, byte_counts, psnrs)]
        return rows

    table = loop_filters.bd_rates([photo(0.9), photo(0.95)])
    bicubic = [bd_rate(*curve(1.0, 0.0, top), *curve(share, 0.0, top)) for share in (0.9, 0.95)]
    assert table["bicubic|x2|all"]["mean"] == pytest.approx(sum(bicubic) / 2) and -11 < bicubic[0] < -9
    choice = [bd_rate(*curve(1.0, 1.0, low), *curve(share, 1.2, low)) for share in (0.9, 0.95)]
    assert table["encoder's choice|x4|low"]["mean"] == pytest.approx(sum(choice) / 2)
    assert table["encoder's choice|x4|low"]["mean"] < table["bicubic|x4|low"]["mean"] < 0
    assert table["upscaler with filters|x2|all"]["mean"] > 0  # it lost 0.6 dB on streams without filters
    assert table["upscaler with filters|x2|all"]["filters_better"] == 2
    assert table["encoder's choice|x2|all"]["filters_better"] == 0


def test_loop_filter_benchmark_codes_both_ways_and_upscales_each(run_module, monkeypatch):
    import loop_filters
    from upscale import coded_stream

    from codec.color import to_uint8
    from codec.luma import luma_stream
    from codec.metrics import psnr
    from codec.upscale import apply_upscale
    from codec.weights import load_model

    monkeypatch.setattr(loop_filters, "X265_QUALITIES", (10, 30))
    networks = {"with": load_model("upscale-v1"), "without": load_model("upscale-v2")}
    luma = rgb_to_ycbcr(synthetic_rgb(48, 64))[0]
    rows = loop_filters.measure(luma, networks)
    assert len(rows) == len(loop_filters.SCALES) * 2 * 2
    for row in rows:  # each row: its stream coded as its "filters" says, each upscaler run on it
        decoded, luma_bytes = coded_stream(luma_stream(luma, row["scale"]), row["x265_quality"], row["filters"])
        assert row["bytes"] == luma_bytes
        for name, network in networks.items():
            output = apply_upscale(decoded, *luma.shape, row["scale"], luma_bytes, lambda network=network: network, 2)
            assert row[name] == psnr(to_uint8(luma), output)
    assert {row["filters"] for row in rows} == {True, False}


@pytest.mark.parametrize("reads_filtered", [True, False])
def test_each_upscaler_is_measured_on_streams_coded_as_the_encoder_codes_them_for_it(run_module, monkeypatch,
                                                                                      reads_filtered):
    import dataclasses

    import upscale

    from codec.models import REGISTRY, RELEASES

    key = RELEASES[-1]["upscale"]
    monkeypatch.setitem(REGISTRY, key, dataclasses.replace(REGISTRY[key], loop_filters=reads_filtered))
    stream = luma_stream(rgb_to_ycbcr(synthetic_rgb(48, 64))[0], 2)
    streams = upscale.coded_streams(stream, 2, 20)
    for kind, filters in (("bicubic", True), ("learned", reads_filtered)):
        decoded, luma_bytes = upscale.coded_stream(stream, 20, filters)
        assert streams[kind][1] == luma_bytes and np.array_equal(streams[kind][0], decoded)
    assert upscale.newest_upscaler(reads_filtered) == key  # the released one, newest of its kind
