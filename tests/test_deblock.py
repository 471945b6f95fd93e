"""Stage 4, the deblocking CNN: the encoder turns it on where it brings the luma closer to the
source (the file's deblock level), it runs on every decoded image, and --baseline switches it off."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec import format
from codec.deblock import apply_deblock, deblock_condition, deblock_level
from codec.metrics import psnr
from conftest import SAMPLE_PHOTO

QUALITY = 30  # the photo fixture's luma is coded at full size here, where stage 4 pays (0.2 dB)


@pytest.fixture(scope="module")
def coded(photo):
    """The photo fixture coded at QUALITY, and its pixels."""
    return codec.encode(photo, quality=QUALITY), np.asarray(photo)


def with_level(data: bytes, level: int, model_version: bytes | None = None) -> bytes:
    """``data`` rewritten with another deblock level (and model version)."""
    container = format.parse_container(data)
    container.deblock_level = level
    if model_version is not None:
        container.model_version = model_version
    return format.build_container(container)


def test_the_encoder_turns_stage_4_on_where_it_improves_the_decode(coded):
    data, source = coded
    assert format.parse_container(data).deblock_level > 0
    learned = np.asarray(codec.decode(data))
    baseline = np.asarray(codec.decode(data, baseline=("deblock",)))
    assert psnr(source, learned) > psnr(source, baseline) + 0.02


def test_the_level_serves_the_image_better_than_the_psnr_of_the_luma_stage_4_receives(photo, monkeypatch):
    """The encoder tells the network the measured PSNR of its input, or a level near it that brings
    the decoded luma closer to the source: a local search over a few runs of stage 4."""
    from codec import pipeline
    from codec.pipeline import DEBLOCK_LEVEL_REACH, ImageEncoder

    gray = np.asarray(photo.convert("L"))  # the decoded image is the luma the encoder measures
    encoder = ImageEncoder(gray)
    measured = deblock_level(gray, encoder.upscaled_luma(encoder.choose_luma(QUALITY)))  # stage 4 at measured levels
    assert 4 * 25 < measured < 4 * 45  # quarter dB of a luma coded at QUALITY
    tried = []
    monkeypatch.setattr(pipeline, "apply_deblock", lambda *args: tried.append(args[-1]) or apply_deblock(*args))
    data, _ = encoder.encode(QUALITY)  # the same choice (kept), then the search
    level = format.parse_container(data).deblock_level
    assert len(tried) >= 3 and level in tried and all(abs(other - measured) <= DEBLOCK_LEVEL_REACH for other in tried)
    monkeypatch.undo()
    assert psnr(gray, np.asarray(codec.decode(data))) > psnr(gray, np.asarray(codec.decode(with_level(data, measured))))


def test_a_reused_encoder_writes_what_a_fresh_one_does(photo):
    """--target-size encodes one image at several qualities with one ImageEncoder: the level tuned
    for one quality's luma does not change what another quality (or the same again) writes, as the
    luma choice keeps weighing every candidate at its measured level."""
    from codec.metrics import squared_error
    from codec.pipeline import ImageEncoder

    gray = np.asarray(photo.convert("L"))
    encoder = ImageEncoder(gray)
    first, _ = encoder.encode(QUALITY)
    choice = encoder.choose_luma(QUALITY)
    ranked_by = encoder._luma_error(choice, stage=4)  # what the luma choice weighs it by, at any quality
    assert ranked_by == squared_error(encoder.luma_plane, encoder._stage4(choice)[1])  # the measured level's
    assert ranked_by > squared_error(encoder.luma_plane, encoder.decoded_luma(choice))  # not the tuned file's
    assert encoder.encode(QUALITY + 5)[0] == ImageEncoder(gray).encode(QUALITY + 5)[0]
    assert encoder.encode(QUALITY)[0] == first and format.parse_container(first).deblock_level > 0


def test_level_0_decodes_as_the_baseline(coded):
    data, _ = coded
    off = with_level(data, 0)
    assert np.array_equal(np.asarray(codec.decode(off)), np.asarray(codec.decode(data, baseline=("deblock",))))


def test_the_encoder_writes_level_0_where_the_network_would_harm(photo, monkeypatch):
    """Analysis by synthesis: a deblocker that adds error is switched off for the file."""
    from codec import stages
    from codec.models import stage_of

    real_network = stages.Stages.network

    def harmful(self, stage, release):
        network = real_network(self, stage, release)
        if stage_of(stage) != "deblock":  # either of a release's deblockers
            return network
        broken = copy.deepcopy(network)
        with torch.no_grad():
            broken.tail[1].bias.fill_(0.05)  # every pixel 13 levels too bright
        return broken

    monkeypatch.setattr(stages.Stages, "network", harmful)
    data = codec.encode(photo, quality=QUALITY)
    assert format.parse_container(data).deblock_level == 0


def test_the_encoder_does_not_run_stage_4_on_reduced_luma(photo, monkeypatch):
    """At x2/x4 the encoder writes level 0 without spending a full-size network run on any of those
    candidates (encode time; on Kodak the upscaled luma never earned a level: DEBLOCK_SCALES)."""
    from codec import pipeline

    scales = []  # the luma scale of each stage-4 run
    real_apply = pipeline.apply_deblock
    monkeypatch.setattr(pipeline, "apply_deblock", lambda luma, luma_bytes, pixels, scale, *args, **kwargs:
                        scales.append(scale) or real_apply(luma, luma_bytes, pixels, scale, *args, **kwargs))
    encoder = pipeline.ImageEncoder(np.asarray(photo))
    data, _ = encoder.encode(1)
    container = format.parse_container(data)
    assert container.luma_scale > 1 and container.deblock_level == 0
    runs = len(scales)  # runs on full-size finalists at quality 1, if any
    data, _ = encoder.encode(QUALITY)  # full-size luma: judged after stage 4 as before
    assert len(scales) > runs and set(scales) == {1} and format.parse_container(data).deblock_level > 0


def test_the_encoder_spares_stage_4_on_candidates_that_cannot_win(photo, monkeypatch):
    """At quality 1 the full-size finalists lose even if stage 4 removed half their error
    (DEBLOCK_MAX_GAIN): their network runs are spared, and the file is the one judging them all gives."""
    import math

    from codec import pipeline

    runs = []
    real_apply = pipeline.apply_deblock
    monkeypatch.setattr(pipeline, "apply_deblock", lambda *args, **kwargs:
                        runs.append(args[3]) or real_apply(*args, **kwargs))
    gray = np.asarray(photo.convert("L"))
    spared = pipeline.ImageEncoder(gray).encode(1)[0]
    spared_runs = len(runs)
    runs.clear()
    monkeypatch.setattr(pipeline, "DEBLOCK_MAX_GAIN", math.inf)  # judge every finalist after stage 4
    judged = pipeline.ImageEncoder(gray).encode(1)[0]
    assert spared == judged and spared_runs < len(runs) and set(runs) == {1}


def test_baseline_deblock_is_the_identity_on_the_colorized_image(coded):
    """With --baseline deblock (and upscale), stage 4 passes stage 3's output through: the classical decode."""
    from codec import chroma, luma
    from codec.color import ycbcr_to_rgb
    from codec.upscale import apply_upscale

    data, _ = coded
    container = format.parse_container(data)
    height, width = container.height, container.width
    stream = luma.decode_luma(container.sections["luma"], container.luma_codec, container.luma_scale, height, width)
    full_luma = apply_upscale(stream, height, width, container.luma_scale, len(container.sections["luma"]))
    hints = chroma.read_hints(container.hint_layout, container.sections["hints"], stream, height, width)
    expected = ycbcr_to_rgb(full_luma, *chroma.colorize(full_luma, hints))
    assert np.array_equal(np.asarray(codec.decode(data, baseline=("deblock", "upscale", "color"))), expected)


def test_grayscale_and_partial_decodes_go_through_stage_4(photo, coded):
    gray = codec.encode(photo.convert("L"), quality=QUALITY)
    assert format.parse_container(gray).deblock_level > 0
    assert not np.array_equal(np.asarray(codec.decode(gray)), np.asarray(codec.decode(gray, baseline=("deblock",))))
    data, _ = coded
    cut = data[:codec.info(data)["sections"]["luma"] + 40]
    partial = codec.decode(cut, partial=True)
    assert partial.info.get("nnc_partial")
    assert not np.array_equal(np.asarray(partial), np.asarray(codec.decode(cut, partial=True, baseline=("deblock",))))


def test_decoding_gives_the_same_bytes_with_one_or_two_threads_and_twice():
    with Image.open(SAMPLE_PHOTO) as image:
        data = codec.encode(image.convert("RGB").crop((0, 0, 520, 300)), quality=QUALITY)  # 3 x 2 tiles of 256
    assert format.parse_container(data).deblock_level > 0
    decoded = [np.asarray(codec.decode(data, threads=threads)).tobytes() for threads in (1, 2, 2)]
    assert decoded[0] == decoded[1] == decoded[2]
    assert decoded[0] != np.asarray(codec.decode(data, baseline=("deblock",))).tobytes()


def test_the_encoder_judges_candidates_by_the_decoders_real_output(photo):
    """Analysis by synthesis: the luma the encoder measures is the decoder's, stage 4 included."""
    from codec.pipeline import ImageEncoder
    from codec.stages import Stages

    gray = np.asarray(photo.convert("L"))
    for stages in (Stages(), Stages(frozenset({"deblock"}))):
        encoder = ImageEncoder(gray, stages=stages)
        data, _ = encoder.encode(QUALITY)
        assert np.array_equal(encoder.decoded_luma(encoder.choose_luma(QUALITY)),
                              np.asarray(codec.decode(data, baseline=stages)))
        assert (format.parse_container(data).deblock_level == 0) == ("deblock" in stages.baseline)


@pytest.mark.parametrize("reads_filtered", [True, False])
def test_full_size_luma_loses_hevcs_loop_filters_only_for_a_deblocker_trained_without_them(
        photo, monkeypatch, reads_filtered):
    """The encoder codes x1 luma without deblocking and SAO when stage 4 runs a network trained on
    such luma (``ModelSpec.loop_filters``), both ways when the release has one for each
    (DEBLOCK_UNFILTERED); the identity baseline keeps them."""
    import dataclasses

    from codec import hevc, pipeline
    from codec.models import DEBLOCK_UNFILTERED, REGISTRY, RELEASES
    from codec.pipeline import ImageEncoder
    from codec.stages import Stages

    release = {stage: key for stage, key in RELEASES[-1].items() if stage != DEBLOCK_UNFILTERED}  # one deblocker
    monkeypatch.setattr(pipeline, "RELEASES", (*RELEASES[:-1], release))
    monkeypatch.setitem(REGISTRY, release["deblock"],
                        dataclasses.replace(REGISTRY[release["deblock"]], loop_filters=reads_filtered))
    gray = np.asarray(photo.convert("L"))
    x265_quality = 40
    payloads = {filters: format.build_hevc_plane(hevc.encode_plane(gray, x265_quality, filters))
                for filters in (True, False)}
    assert payloads[True] != payloads[False]
    for stages, filtered in ((Stages(), reads_filtered), (Stages(frozenset({"deblock"})), True)):
        encoder = ImageEncoder(gray, stages=stages)
        assert encoder._loop_filter_choices(1) == (filtered,)
        assert encoder._luma(1, x265_quality, filtered).payload == payloads[filtered]
    monkeypatch.setattr(pipeline, "RELEASES", (*RELEASES[:-1], {**release, DEBLOCK_UNFILTERED: release["deblock"]}))
    assert ImageEncoder(gray)._loop_filter_choices(1) == (True, False)
    assert ImageEncoder(gray, stages=Stages(frozenset({"deblock"})))._loop_filter_choices(1) == (True,)
    assert ImageEncoder(gray)._loop_filter_choices(2) == (REGISTRY[release["upscale"]].loop_filters,)


def test_stage_4_runs_the_deblocker_the_luma_was_coded_for(photo, monkeypatch):
    """The newest release has a deblocker for full-size luma with HEVC's loop filters and one for
    luma without; the decoder picks by the stream's parameter sets and outputs what the encoder judged."""
    from codec import stages
    from codec.models import DEBLOCK_UNFILTERED, stage_of
    from codec.pipeline import ImageEncoder

    requested = []
    real_network = stages.Stages.network
    monkeypatch.setattr(stages.Stages, "network", lambda self, stage, release:
                        requested.append(stage) or real_network(self, stage, release))
    gray = np.asarray(photo.convert("L"))
    for filters, entry in ((True, "deblock"), (False, DEBLOCK_UNFILTERED)):
        encoder = ImageEncoder(gray, full_size_loop_filters=filters)
        data, _ = encoder.encode(QUALITY)
        fields = codec.info(data)
        assert fields["luma_scale"] == 1 and fields["luma_loop_filters"] is filters and fields["deblock_level"] > 0
        requested.clear()
        decoded = np.asarray(codec.decode(data))
        assert [stage for stage in requested if stage_of(stage) == "deblock"] == [entry]
        assert np.array_equal(decoded, encoder.decoded_luma(encoder.choose_luma(QUALITY)))


def test_the_encoder_keeps_the_better_of_full_size_luma_with_and_without_loop_filters(photo):
    """Per file, by the decoder's real output: D + lambda R of the file is the lesser of those of
    the files coded only one way (and at x2/x4), and the two differ."""
    from codec.pipeline import ImageEncoder, lagrange_multiplier

    gray = np.asarray(photo.convert("L"))
    source = gray.astype(np.float64)
    def cost(data: bytes, quality: int) -> float:
        error = np.sum((np.asarray(codec.decode(data)).astype(np.float64) - source) ** 2)
        return float(error + lagrange_multiplier(quality) * 8 * len(format.parse_container(data).sections["luma"]))

    chosen, levels = set(), set()
    for quality in (30, 40, 70):
        either = {filters: ImageEncoder(gray, full_size_loop_filters=filters).encode(quality)[0]
                  for filters in (True, False)}
        assert cost(either[True], quality) != cost(either[False], quality)
        data, _ = ImageEncoder(gray).encode(quality)
        assert cost(data, quality) == pytest.approx(min(cost(one, quality) for one in either.values()), rel=1e-6)
        chosen.add(codec.info(data)["luma_loop_filters"])
        levels.add(codec.info(data)["deblock_level"])
    assert chosen == {True, False}  # on this photo: with the filters at 30 (deblock-v9), without them at 40
    assert 0 in levels and len(levels) > 1  # and at 70, where stage 4 is off


def test_a_releases_deblocker_for_unfiltered_luma_reads_the_files_level_as_its_first_does():
    """The decoder checks the level against the release's first deblocker before it reads the luma
    stream that picks one (spec 6), so both must take the same condition; each reads the luma it was trained on."""
    from codec.models import DEBLOCK_UNFILTERED, REGISTRY, RELEASES

    releases = [release for release in RELEASES if DEBLOCK_UNFILTERED in release]
    assert releases
    for release in releases:
        first, second = REGISTRY[release["deblock"]], REGISTRY[release[DEBLOCK_UNFILTERED]]
        assert first.hparams["condition_channels"] == second.hparams["condition_channels"]
        assert first.loop_filters and not second.loop_filters


def test_condition_grows_with_the_rate_scale_and_level():
    low, high = deblock_condition(100, 10_000, 1), deblock_condition(1000, 10_000, 1)
    assert low[0] < high[0] and low[1] == 0.0 and len(low) == 2
    assert deblock_condition(100, 10_000, 4)[1] == 1.0
    assert -1.0 <= deblock_condition(1, 10**9, 1)[0] and deblock_condition(10**9, 1, 1)[0] <= 2.0
    assert deblock_condition(100, 10_000, 1, 120)[2] == pytest.approx(30 / 50)
    assert deblock_condition(100, 10_000, 1, 120)[2] < deblock_condition(100, 10_000, 1, 160)[2]


def test_level_is_the_psnr_in_quarter_db_within_1_to_255():
    original = np.full((8, 8), 100, np.uint8)
    decoded = original.copy()
    decoded[0, 0] = 110  # MSE 100 / 64
    expected = round(4 * 10 * np.log10(255 ** 2 / (100 / 64)))
    assert deblock_level(original, decoded) == expected
    assert deblock_level(original, original) == 255
    assert deblock_level(np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8)) == 1


def test_files_of_the_classical_release_decode_without_deblocking(coded):
    """A file naming model version e3b0c442 (nnc 0.1) decodes with stage 4 as the identity, whatever its level."""
    data, _ = coded
    old = with_level(data, 200, bytes.fromhex("e3b0c442"))
    assert np.array_equal(np.asarray(codec.decode(old)),
                          np.asarray(codec.decode(data, baseline=("deblock", "upscale", "color"))))


def test_a_release_without_a_deblocker_ignores_the_level(coded):
    """Release 8842ad9c (nnc 0.5, 0.6) has stages 2 and 3 learned and no stage 4: any level decodes the same."""
    from codec.models import RELEASES
    from codec.weights import release_version

    data, _ = coded
    version = release_version(RELEASES[3])
    decoded = [np.asarray(codec.decode(with_level(data, level, version))) for level in (0, 200)]
    assert np.array_equal(decoded[0], decoded[1])


def test_a_level_that_does_not_fit_the_releases_deblocker_is_refused(coded):
    """A level for deblock-v1 (which takes none) is a corrupt file: one clear error, not a crash."""
    from codec.models import RELEASES
    from codec.weights import release_version

    data, _ = coded
    with pytest.raises(codec.FormatError, match="deblock level"):
        codec.decode(with_level(data, 100, release_version(RELEASES[1])))


def test_a_file_without_a_level_naming_a_deblocker_that_needs_one_is_refused(coded):
    """A format-0.x header (no level byte) with the newest release's model version: corrupt."""
    data, _ = coded
    container = format.parse_container(data)
    container.format_version, container.deblock_level = (0, 4), None
    old = format.build_container(container)
    assert len(old) == len(data) - 1 - (codec.info(data)["color_strength"] is not None)  # no strength byte either
    with pytest.raises(codec.FormatError, match="deblock level"):
        codec.decode(old)
