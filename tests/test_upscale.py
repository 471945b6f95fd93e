"""Stage 2, the upscaler: bicubic until trained, seamless tiles at any size, the released networks
beat bicubic on a low-rate file, --baseline upscale and --look switch what the decoder runs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import codec
from codec.color import upsample_bicubic
from codec.metrics import gradient_energy, grid_strength, psnr
from codec.models import LOOKS, RELEASES
from codec.models.sr_net import Upscaler, Upscalers
from codec.runtime import run_network
from codec.stages import Stages
from codec.upscale import apply_upscale, rate_condition


def _stream(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    return np.clip(128 + 60 * np.sin(xs / 3.0) * np.cos(ys / 5.0) + rng.normal(0, 8, (height, width)),
                   0, 255).astype(np.uint8)


@pytest.mark.parametrize("scale", [2, 4])
def test_an_untrained_upscaler_is_the_bicubic_baseline(scale):
    stream = _stream(23, 31)
    height, width = scale * 23 - 1, scale * 31 - 3  # sides that are not multiples of the scale
    networks = Upscalers(**{f"x{scale}": {"channels": 8, "blocks": 1}})
    assert np.array_equal(apply_upscale(stream, height, width, scale, 100, lambda: networks),
                          upsample_bicubic(stream, height, width))


@pytest.mark.parametrize("scale", [2, 4])
def test_tiles_of_the_upscaler_leave_no_seams(scale):
    torch.manual_seed(scale)
    network = Upscaler(scale, channels=8, blocks=2).eval()
    torch.nn.init.normal_(network.tail[0].weight, std=0.05)  # a net that changes the picture
    planes = np.random.default_rng(1).random((1, 40 * scale, 28 * scale), dtype=np.float32)
    whole = run_network(network, planes, (0.5,), tile_side=1024)
    tiled = run_network(network, planes, (0.5,), threads=2, tile_side=8 * scale)
    assert np.abs(whole - planes).max() > 1e-3
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_the_rate_condition_grows_with_the_rate_and_stays_bounded():
    assert rate_condition(100, 10_000) < rate_condition(1000, 10_000)
    assert rate_condition(1, 10**9) == -1.0 and rate_condition(10**9, 1) == 2.0


def test_an_unknown_look_is_refused():
    with pytest.raises(ValueError, match="unknown look"):
        Stages(look="painterly")
    result = CliRunner().invoke(__import__("cli").main, ["decode", "x.nnc", "-o", "x.png", "--look", "painterly"])
    assert result.exit_code == 2


def test_grid_strength_sees_a_repeating_error_and_nothing_else():
    rng = np.random.default_rng(3)
    reference = rng.integers(20, 230, (64, 96)).astype(np.uint8)
    grid = np.tile(np.array([[2, -2, 0, 0]] * 4, np.int16), (16, 24))  # every 4th column +2, the next -2
    assert grid_strength(reference, (reference + grid).astype(np.uint8), 4) == pytest.approx(np.sqrt(2))
    assert grid_strength(reference, (reference + grid).astype(np.uint8), 3) < 0.2  # not a 3-sample grid
    assert grid_strength(reference, reference + 1, 4) == 0.0  # an offset is no grid
    with pytest.raises(ValueError, match="no whole"):
        grid_strength(reference[:3], reference[:3], 4)
    # along lines: each row carries it (RMS sqrt(2)), no column does; rows and columns count half each
    assert grid_strength(reference, (reference + grid).astype(np.uint8), 4, lines=True) == pytest.approx(1.0)
    assert grid_strength(reference, reference + 1, 4, lines=True) == 0.0


def test_grid_strength_along_lines_sees_dots_whose_sign_changes_across_the_plane():
    """A 66x97 plane (no side a multiple of 4): every 4th row +2, the next -2, left of column 48, and
    the opposite right of it. The whole plane's phase means cancel; each column carries the pattern."""
    reference = np.random.default_rng(4).integers(20, 230, (66, 97)).astype(np.uint8)
    dots = np.zeros((66, 97), np.int16)
    dots[0::4], dots[1::4] = 2, -2
    dots[:, 48:] *= -1
    decoded = (reference + dots).astype(np.uint8)
    assert grid_strength(reference, decoded, 4) == 0.0
    assert grid_strength(reference, decoded, 4, lines=True) == pytest.approx(1.0)  # columns sqrt(2), rows 0


def test_gradient_energy_falls_with_blur():
    stream = _stream(40, 40)
    blurred = upsample_bicubic(stream[::2, ::2], 40, 40)
    assert gradient_energy(blurred) < 0.5 * gradient_energy(stream)
    assert gradient_energy(np.full((5, 5), 7, np.uint8)) == 0.0


needs_release = pytest.mark.skipif(not any("upscale" in release for release in RELEASES),
                                   reason="no release has a learned upscaler")


@pytest.fixture(scope="module")
def low_rate_file(photo):
    """The photo fixture at quality 1: its luma coded downsampled, where stage 2 matters most."""
    data = codec.encode(photo, quality=1)
    assert codec.info(data)["luma_scale"] > 1
    return data, np.asarray(photo)


@needs_release
def test_the_learned_upscaler_beats_bicubic_on_a_low_rate_file(low_rate_file):
    data, source = low_rate_file
    learned = np.asarray(codec.decode(data, baseline=("deblock",)))
    bicubic = np.asarray(codec.decode(data, baseline=("deblock", "upscale")))
    assert psnr(source, learned) > psnr(source, bicubic) + 0.1


@needs_release
def test_baseline_upscale_runs_bicubic_on_both_sides(photo, monkeypatch):
    """``--baseline upscale``: the encoder judges candidates by bicubic upscaling (it never loads the
    upscaler), and the decoder then runs bicubic."""
    from codec.pipeline import ImageEncoder

    gray = np.asarray(photo.convert("L"))
    stages = Stages(frozenset({"upscale", "deblock"}))
    with monkeypatch.context() as patch:
        patch.setattr("codec.stages.load_model", lambda key: pytest.fail(f"loaded {key}"))
        encoder = ImageEncoder(gray, stages=stages)
        choice = encoder.choose_luma(1)
    data, report = encoder.encode(1)
    assert report.luma_scale == choice.scale > 1
    expected = upsample_bicubic(choice.stream, *gray.shape)
    assert np.array_equal(encoder.decoded_luma(choice), expected)
    assert np.array_equal(np.asarray(codec.decode(data, baseline=stages)), expected)


@needs_release
def test_the_encoder_judges_the_learned_upscalers_output(photo):
    """Analysis by synthesis: the luma the encoder measures is what the decoder outputs, stage 2 learned."""
    from codec.pipeline import ImageEncoder

    encoder = ImageEncoder(np.asarray(photo.convert("L")))
    data, report = encoder.encode(1)
    assert report.luma_scale > 1
    assert np.array_equal(encoder.decoded_luma(encoder.choose_luma(1)), np.asarray(codec.decode(data)))


@needs_release
def test_the_encoder_spares_stage_2_on_candidates_that_cannot_win(photo, monkeypatch):
    """At quality 30, just above where this photo's luma goes full size (x2 up to 25), the x4
    candidates lose to full-size luma even if the upscaler removed half of bicubic's error
    (UPSCALE_MAX_GAIN): their network runs are spared, the closer x2 ones are judged, and the
    file is the one judging them all gives."""
    import math

    from codec import pipeline

    gray = np.asarray(photo.convert("L"))
    runs = []  # shapes of the x2/x4 streams upscaled
    real_apply = pipeline.apply_upscale

    def counted(stream, *args, **kwargs):
        if stream.shape != gray.shape:
            runs.append(stream.shape)
        return real_apply(stream, *args, **kwargs)

    monkeypatch.setattr(pipeline, "apply_upscale", counted)
    spared = pipeline.ImageEncoder(gray).encode(30)[0]
    ran = list(runs)
    runs.clear()
    monkeypatch.setattr(pipeline, "UPSCALE_MAX_GAIN", math.inf)  # judge every candidate after stage 2
    judged = pipeline.ImageEncoder(gray).encode(30)[0]
    assert spared == judged and 0 < len(ran) < len(runs)
    assert set(ran) == {(96, 128)}  # the x2 ones ran, the x4 ones (48x64) were spared


@pytest.mark.parametrize("reads_filtered", [True, False])
def test_downsampled_luma_loses_hevcs_loop_filters_only_for_an_upscaler_trained_without_them(
        photo, monkeypatch, reads_filtered):
    """The encoder codes x2/x4 luma without deblocking and SAO when, and only when, stage 2 runs a
    network trained on such streams (``ModelSpec.loop_filters``); the bicubic baseline keeps them,
    and full-size luma does as stage 4 says (tests/test_deblock.py), whatever stage 2 reads."""
    from codec import format, hevc
    from codec.luma import luma_stream
    from codec.models import REGISTRY
    from codec.pipeline import ImageEncoder

    release = RELEASES[-1]
    monkeypatch.setitem(REGISTRY, release["upscale"],
                        dataclasses.replace(REGISTRY[release["upscale"]], loop_filters=reads_filtered))
    gray = np.asarray(photo.convert("L"))
    full_size = ImageEncoder(gray)._loop_filter_choices(1)
    for stages, filtered in ((Stages(), reads_filtered), (Stages(frozenset({"upscale"})), True)):
        encoder = ImageEncoder(gray, stages=stages)
        for scale, quality in ((4, 10), (2, 20)):
            payloads = {filters: format.build_hevc_plane(hevc.encode_plane(luma_stream(encoder.luma_plane, scale),
                                                                           quality, filters))
                        for filters in (True, False)}
            assert payloads[True] != payloads[False]
            assert encoder._loop_filter_choices(scale) == (filtered,)
            assert encoder._luma(scale, quality, filtered).payload == payloads[filtered]
        assert encoder._loop_filter_choices(1) == full_size


@needs_release
def test_the_encoder_always_judges_with_the_fidelity_look(photo):
    small = photo.crop((0, 0, 256, 192))
    assert codec.encode(small, quality=1, baseline=Stages(look="perceptual")) == codec.encode(small, quality=1)


@needs_release
def test_the_perceptual_look_renders_the_same_file_sharper(low_rate_file):
    data, _ = low_rate_file
    assert "perceptual" in LOOKS[RELEASES[-1]["upscale"]]  # the newest release ships one
    fidelity = codec.decode(data).convert("L")
    perceptual = codec.decode(data, look="perceptual").convert("L")
    assert not np.array_equal(np.asarray(fidelity), np.asarray(perceptual))
    assert gradient_energy(np.asarray(perceptual)) > gradient_energy(np.asarray(fidelity))


@needs_release
def test_a_look_the_release_lacks_is_said(low_rate_file, monkeypatch):
    data, _ = low_rate_file
    monkeypatch.setitem(LOOKS, RELEASES[-1]["upscale"], {})
    with pytest.warns(UserWarning, match=f"{RELEASES[-1]['upscale']}.*no perceptual weights"):
        rendered = codec.decode(data, look="perceptual")
    assert np.array_equal(np.asarray(rendered), np.asarray(codec.decode(data)))


@needs_release
def test_upscaled_decodes_are_the_same_bytes_with_one_or_two_threads(photo):
    data = codec.encode(photo.crop((0, 0, 520, 300)), quality=1)  # 3 x 2 tiles of 256 output pixels
    assert codec.info(data)["luma_scale"] > 1
    decoded = [np.asarray(codec.decode(data, threads=threads)).tobytes() for threads in (1, 2, 2)]
    assert decoded[0] == decoded[1] == decoded[2]
    assert decoded[0] != np.asarray(codec.decode(data, baseline=("upscale",))).tobytes()
