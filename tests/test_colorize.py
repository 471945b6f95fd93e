"""Stage 3, the colorizer: classical until trained, seamless tiles, the released network keeps gray
gray and small saturated objects saturated, and --baseline color switches both sides back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec import chroma
from codec.color import rgb_to_ycbcr, ycbcr_to_rgb
from codec.metrics import psnr
from codec.models.colorizer import HintColorizer
from codec.runtime import run_network
from codec.stages import Stages


def _textured_luma(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    return np.clip(120 + 50 * np.sin(xs / 4.0) * np.cos(ys / 6.0) + rng.normal(0, 10, (height, width)),
                   0, 255).astype(np.uint8)


def test_an_untrained_colorizer_is_the_classical_colorization():
    rng = np.random.default_rng(0)
    cb, cr = (rng.uniform(60, 200, (45, 61)) for _ in range(2))  # sides that are not multiples of the fold
    hints = chroma.encode_grid_hints(cb, cr, 2, 40).hints
    luma = _textured_luma(45, 61)
    learned = chroma.colorize(luma, hints, lambda: HintColorizer(channels=8, blocks=1))
    classical = chroma.colorize(luma, hints)
    assert all(np.array_equal(a, b) for a, b in zip(learned, classical))


def test_tiles_of_the_colorizer_leave_no_seams():
    torch.manual_seed(0)
    network = HintColorizer(channels=8, blocks=2).eval()
    torch.nn.init.normal_(network.tail[0].weight, std=0.05)  # a net that changes the picture
    planes = np.random.default_rng(1).random((3, 120, 88), dtype=np.float32)
    whole = run_network(network, planes, (0.0, 0.5, 0.3), tile_side=1024)
    tiled = run_network(network, planes, (0.0, 0.5, 0.3), threads=2, tile_side=32)
    assert whole.shape == (2, 120, 88) and np.abs(whole - planes[1:]).max() > 1e-3
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_the_condition_tells_layouts_spacing_and_rate_apart():
    rng = np.random.default_rng(2)
    cb, cr = (rng.uniform(60, 200, (64, 96)) for _ in range(2))
    coarse, fine = (chroma.encode_grid_hints(cb, cr, f, 30).hints for f in (3, 1))
    segments = chroma.encode_segment_hints(cb, cr, _textured_luma(32, 48), 8, 4).hints
    assert chroma.colorize_condition(coarse, 64, 96)[:2] == (0.0, 0.75)
    assert chroma.colorize_condition(fine, 64, 96)[:2] == (0.0, 0.25)
    assert chroma.colorize_condition(segments, 64, 96)[0] == 1.0
    assert chroma.colorize_condition(segments, 64, 96)[1] > 0.75


def _decoded_chroma(data: bytes, baseline: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(Cb, Cr) of the decoded file; with no baseline, the learned colorization even where the
    file's classical_color bit asks for the classical one (the bit is cleared first)."""
    if not baseline:
        container = codec.format.parse_container(data)
        container.classical_color = False
        data = codec.format.build_container(container)
    _, cb, cr = rgb_to_ycbcr(np.asarray(codec.decode(data, baseline=baseline)))
    return cb, cr


def test_the_learned_colorizer_beats_the_classical_one_on_the_same_hints(photo):
    data = codec.encode(photo, quality=10)
    _, cb, cr = rgb_to_ycbcr(np.asarray(photo))
    original = np.stack([cb, cr])
    learned = np.stack(_decoded_chroma(data))
    classical = np.stack(_decoded_chroma(data, ("color",)))
    assert psnr(original, learned) > psnr(original, classical) + 0.2


def test_the_encoder_spares_stage_3_on_hints_that_cannot_win(photo, monkeypatch):
    """Hints whose learned colorization would lose even if the network removed most of the
    classical one's error (COLOR_MAX_GAIN) are not run through it, and the file is the one
    judging them all gives."""
    import math

    from codec import pipeline

    runs = []
    real_network_colors = chroma.network_colors
    monkeypatch.setattr(chroma, "network_colors", lambda *args, **kwargs:
                        runs.append(1) or real_network_colors(*args, **kwargs))
    spared = pipeline.ImageEncoder(np.asarray(photo)).encode(5)[0]
    spared_runs = len(runs)
    runs.clear()
    monkeypatch.setattr(pipeline, "COLOR_MAX_GAIN", math.inf)  # judge every hint candidate both ways
    judged = pipeline.ImageEncoder(np.asarray(photo)).encode(5)[0]
    assert spared == judged and 0 < spared_runs < len(runs)


def test_baseline_color_runs_the_classical_colorization_on_both_sides(photo, monkeypatch):
    """``--baseline color``: the encoder judges hints by the classical colorization (it never loads
    the colorizer), and the decoder then runs it."""
    from codec.pipeline import ImageEncoder
    from codec.stages import load_model

    pixels = np.asarray(photo)
    stages = Stages(frozenset({"color"}))
    loaded = []
    with monkeypatch.context() as patch:
        patch.setattr("codec.stages.load_model", lambda key: loaded.append(key) or load_model(key))
        encoder = ImageEncoder(pixels, stages=stages)
        data, report = encoder.encode(10)
    assert loaded and not [key for key in loaded if key.startswith("colorize")]
    choice = encoder.choose_luma(10)
    hints = chroma.read_hints(report.hint_layout, codec.format.parse_container(data).sections["hints"],
                              choice.stream, *pixels.shape[:2])
    expected = ycbcr_to_rgb(encoder.decoded_luma(choice), *chroma.colorize(encoder.upscaled_luma(choice), hints))
    assert np.array_equal(np.asarray(codec.decode(data, baseline=stages)), expected)
    assert codec.info(data)["classical_color"]  # the file says so: any decoder renders it as judged
    assert np.array_equal(np.asarray(codec.decode(data)), expected)


def test_the_file_says_when_the_classical_colorization_is_closer():
    """Per file, the encoder picks the colorization closer to the source and the decoder follows the bit."""
    from codec import format

    rng = np.random.default_rng(5)  # chroma noise no luma can explain: the network only adds error
    noisy = Image.fromarray(np.clip(128 + rng.normal(0, 25, (40, 56, 3)), 0, 255).astype(np.uint8))
    data, report = codec.encode_with_report(noisy, quality=30)  # segment hints: the network would run
    assert report.hint_layout == "segments"
    assert report.hint_params["classical_color"] and codec.info(data)["classical_color"]
    container = format.parse_container(data)
    container.classical_color = False  # the same file, rendered with the colorizer
    learned = np.asarray(codec.decode(format.build_container(container)))
    classical = np.asarray(codec.decode(data))
    assert np.array_equal(classical, np.asarray(codec.decode(data, baseline=("color",))))
    assert psnr(np.asarray(noisy), classical) > psnr(np.asarray(noisy), learned)
    assert report.psnr == pytest.approx(psnr(np.asarray(noisy), classical))


def test_a_nearly_gray_photo_does_not_come_out_tinted():
    """No color cast beyond the hints' own, and no visible color in the texture: as the file
    decodes (the encoder keeps the classical colorization here), at most a few levels; the
    network's own output (the file's bit cleared) has no cast beyond the classical one's
    (keep_mean, up to the RGB round trip's rounding) and strays at most 6 levels anywhere
    (colorize-v2 reads more color into luma texture than v1: 5.4 at one pixel of 35,840, 4.3 at
    the 99.9th percentile)."""
    luma = _textured_luma(160, 224, seed=3).astype(np.int16)
    pixels = np.stack([luma + 2, luma, luma - 1], axis=-1).clip(0, 255).astype(np.uint8)  # a faint warm cast
    _, source_cb, source_cr = rgb_to_ycbcr(pixels)
    for quality, layout in ((5, "segments"), (60, "grid")):
        data = codec.encode(Image.fromarray(pixels), quality=quality)
        assert codec.info(data)["hint_layout"] == layout and codec.info(data)["classical_color"]
        _, *as_decoded = rgb_to_ycbcr(np.asarray(codec.decode(data)))
        learned, classical = _decoded_chroma(data), _decoded_chroma(data, ("color",))
        for decoded, plane, reference, source in zip(as_decoded, learned, classical, (source_cb, source_cr)):
            assert abs(np.mean(decoded - source)) <= abs(np.mean(reference - source)) + 0.25, quality
            assert np.abs(decoded - source).max() <= 4.5, quality
            assert abs(np.mean(plane - source)) <= abs(np.mean(reference - source)) + 0.25, quality
            assert np.abs(plane - source).max() <= 6, quality


def test_a_small_red_flower_on_green_leaves_stays_red():
    rng = np.random.default_rng(4)
    ys, xs = np.mgrid[0:192, 0:256]
    leaves = np.stack([40 + 0 * xs, 110 + 30 * np.sin(xs / 3.0) * np.cos(ys / 4.0), 40 + 0 * xs], axis=-1)
    flower = (ys - 90) ** 2 + (xs - 130) ** 2 < 7**2
    pixels = np.where(flower[..., None], np.array([210, 30, 40]), leaves) + rng.normal(0, 3, (192, 256, 3))
    pixels = pixels.clip(0, 255).astype(np.uint8)
    _, source_cb, source_cr = rgb_to_ycbcr(pixels)
    for quality in (10, 30):
        data = codec.encode(Image.fromarray(pixels), quality=quality)
        assert quality != 10 or not codec.info(data)["classical_color"]  # the network's own output at q10
        _, decoded_cr = rgb_to_ycbcr(np.asarray(codec.decode(data)))[1:]  # as the file asks (learned at q10)
        _, classical_cr = _decoded_chroma(data, ("color",))
        assert decoded_cr[flower].mean() > 128 + 40  # red: Cr well above gray
        decoded_error = np.abs(decoded_cr[flower] - source_cr[flower]).mean()
        assert decoded_error <= np.abs(classical_cr[flower] - source_cr[flower]).mean() + 2


def test_full_size_chroma_is_output_as_coded_without_the_network(monkeypatch):
    """At the top of the scale the hints are Cb and Cr at full size (format 0.4): stage 3 outputs
    them unchanged, whatever the classical_color bit says, and never runs the colorizer."""
    from codec import format

    rng = np.random.default_rng(2)
    pixels = np.clip(128 + rng.normal(0, 40, (24, 40, 3)), 0, 255).astype(np.uint8)
    data, report = codec.encode_with_report(Image.fromarray(pixels), quality=100)
    assert report.hint_layout == "grid" and report.hint_params["factor"] == 1
    container = format.parse_container(data)
    hints = chroma.read_grid_hints(container.sections["hints"], *pixels.shape[:2])
    coded = np.split(hints.thumbnail, 2, axis=1)  # Cb | Cr as coded, at full size
    monkeypatch.setattr(chroma, "network_colors", lambda *args: pytest.fail("the colorizer ran"))
    outputs = []
    colorize = chroma.colorize
    monkeypatch.setattr(chroma, "colorize", lambda *args: outputs.append(colorize(*args)) or outputs[-1])
    for bit in (False, True):
        container.classical_color = bit
        decoded = np.asarray(codec.decode(format.build_container(container)))
        assert all(np.array_equal(plane, half) for plane, half in zip(outputs[-1], coded))
    assert len(outputs) == 2 and psnr(pixels, decoded) >= 45.0


def test_grid_hints_beyond_one_eighth_are_a_reserved_code():
    from codec import format
    from codec.errors import FormatError

    candidate = chroma.encode_grid_hints(np.full((16, 16), 100, np.float32), np.full((16, 16), 150, np.float32), 0, 60)
    parsed = format.parse_payload(format.GridHints, candidate.payload, "grid hints")
    assert chroma.read_grid_hints(candidate.payload, 16, 16).factor == 1
    reserved = format.GridHints.build({"factor_log2": 4, "thumbnail": parsed.thumbnail})
    with pytest.raises(FormatError, match="reserved factor_log2 4"):
        chroma.read_grid_hints(reserved, 16, 16)


def test_keep_mean_takes_a_networks_cast_away_over_the_whole_tiled_image():
    """A colorizer with keep_mean (colorize-v2 on) cannot tint: whatever it adds, each plane's mean
    stays the classical colorization's, over the whole image (not per tile, padding left out),
    by one shift of the whole plane."""
    rng = np.random.default_rng(7)
    luma = _textured_luma(301, 517, seed=7)  # 2 x 3 tiles of 256, not a multiple of the fold
    classical = tuple(np.clip(128 + rng.normal(0, 10, luma.shape), 0, 255).astype(np.uint8) for _ in range(2))
    outputs = {}
    for keep_mean in (False, True):
        torch.manual_seed(0)
        network = HintColorizer(keep_mean=keep_mean).eval()
        with torch.no_grad():
            network.tail[0].weight.normal_(0, 0.01)  # a correction that varies over the image...
            network.tail[0].bias.fill_(0.05)  # ...and every Cb, Cr some 13 levels up
        outputs[keep_mean] = chroma.refine_colors(network, luma, classical, (0.0, 0.5, 0.5))
    for plane, kept, reference in zip(outputs[False], outputs[True], classical):
        assert np.mean(plane.astype(np.float64)) - np.mean(reference) > 5
        assert abs(np.mean(kept.astype(np.float64)) - np.mean(reference)) < 0.1
        shift = plane.astype(np.int16) - kept
        assert shift.max() - shift.min() <= 1 and shift.mean() > 5


def test_stage_3_runs_the_colorizer_the_hints_were_coded_for(photo, monkeypatch):
    """The newest release has a colorizer for grid thumbnails at 1/2 (COLORIZE_FINE) and one for
    every other layout: the decoder picks by the hints section and outputs what the encoder judged."""
    from codec import stages
    from codec.models import COLORIZE_FINE, RELEASES, stage_of
    from codec.pipeline import color_entry

    rng = np.random.default_rng(3)
    cb, cr = (rng.uniform(60, 200, (32, 48)) for _ in range(2))
    segments = chroma.encode_segment_hints(cb, cr, _textured_luma(32, 48), 8, 4).hints
    grids = [chroma.encode_grid_hints(cb, cr, factor_log2, 30).hints for factor_log2 in (1, 2, 3)]
    assert [color_entry(RELEASES[-1], hints) for hints in (*grids, segments)] == [COLORIZE_FINE, "color", "color",
                                                                                  "color"]
    one_colorizer = next(r for r in reversed(RELEASES) if "color" in r and COLORIZE_FINE not in r)
    assert color_entry(one_colorizer, grids[0]) == "color"  # a release with one colorizer runs it on every layout

    requested = []
    real_network = stages.Stages.network
    monkeypatch.setattr(stages.Stages, "network", lambda self, stage, release:
                        requested.append(stage) or real_network(self, stage, release))
    used = set()
    for quality in (10, 35):  # on this photo: segment hints at 10, a thumbnail at 1/2 at 35, both colorized learned
        data, report = codec.encode_with_report(photo, quality=quality)
        assert not report.hint_params["classical_color"]
        requested.clear()
        decoded = np.asarray(codec.decode(data))
        entry = COLORIZE_FINE if report.hint_params.get("factor") == 2 else "color"
        assert [stage for stage in requested if stage_of(stage) == "color"] == [entry]
        assert report.psnr == pytest.approx(psnr(np.asarray(photo), decoded))
        used.add(entry)
    assert used == {"color", COLORIZE_FINE}


def test_the_color_strength_scales_the_networks_correction_per_plane():
    """Strength 8 is the network's output as before the field existed, 0 the classical
    colorization; best_colors finds the share of the correction that the source calls for."""
    rng = np.random.default_rng(8)
    luma = _textured_luma(64, 96, seed=8)
    classical = tuple(rng.integers(60, 200, (64, 96)).astype(np.uint8) for _ in range(2))
    torch.manual_seed(0)
    network = HintColorizer(channels=8, blocks=1, keep_mean=True).eval()
    torch.nn.init.normal_(network.tail[0].weight, std=0.05)  # a net that changes the picture
    condition = (0.0, 0.5, 0.3)
    output = chroma.network_colors(network, luma, classical, condition)
    full = chroma.refine_colors(network, luma, classical, condition)
    for strength, expected in (((8, 8), full), ((0, 0), classical)):
        finished = chroma.finish_colors(output, classical, strength, keep_mean=True)
        assert all(np.array_equal(a, b) for a, b in zip(finished, expected))
    halves = chroma.finish_colors(output, classical, (4, 4), keep_mean=False)
    assert not np.array_equal(halves[0], full[0]) and not np.array_equal(halves[0], classical[0])
    source = (classical[0] + 0.5 * (output[0] - classical[0]), classical[1].astype(np.float32))  # half, none
    assert chroma.best_colors(output, classical, source, keep_mean=False)[0] == (4, 0)
    with pytest.raises(ValueError, match="not in 0..15"):
        chroma.finish_colors(output, classical, (16, 8), keep_mean=True)


def test_the_file_carries_the_color_strength_the_encoder_found_closest(photo):
    """The decoder applies the header's strengths; on this photo they are neither the full
    correction nor none, and either of those would leave more chroma error."""
    from codec import format

    data, report = codec.encode_with_report(photo, quality=10)
    container = format.parse_container(data)
    chosen = container.color_strength
    assert report.hint_params["color_strength"] == chosen and chosen not in ((8, 8), (0, 0))
    source = np.stack(rgb_to_ycbcr(np.asarray(photo))[1:])
    errors = {}
    for strength in (chosen, (8, 8), (0, 0)):
        container.color_strength = strength
        decoded = np.stack(rgb_to_ycbcr(np.asarray(codec.decode(format.build_container(container))))[1:])
        errors[strength] = float(np.sum((decoded - source) ** 2))
    assert errors[chosen] < min(errors[(8, 8)], errors[(0, 0)])
