"""Stage 4, the deblocking CNN: runs on every decoded image, improves it, and --baseline switches it off.

The newest release has no deblocker (deblock-v1 harms the learned upscaler's output), so these
tests encode as nnc 0.3 did, with release 1 (model version 78c1ca56): its files decode forever."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import codec
from codec.deblock import deblock_condition
from codec.metrics import psnr
from conftest import SAMPLE_PHOTO


@pytest.fixture(scope="module", autouse=True)
def release_1():
    """Encode with release 1 (the deblocker, no upscaler), as nnc 0.3 did."""
    from codec import pipeline, weights

    with pytest.MonkeyPatch.context() as patch:
        for module in (pipeline, weights):
            patch.setattr(module, "RELEASES", module.RELEASES[:2])
        yield


@pytest.fixture(scope="module")
def low_rate(release_1, photo):
    """The photo fixture coded at quality 10, and its pixels."""
    return codec.encode(photo, quality=10), np.asarray(photo)


def test_the_learned_deblocker_improves_a_low_rate_decode(low_rate):
    data, source = low_rate
    learned = np.asarray(codec.decode(data))
    baseline = np.asarray(codec.decode(data, baseline=("deblock",)))
    assert not np.array_equal(learned, baseline)
    assert psnr(source, learned) > psnr(source, baseline) + 0.02


def test_baseline_deblock_is_the_identity_on_the_colorized_image(low_rate):
    """With --baseline deblock (and upscale), stage 4 passes stage 3's output through: the classical decode."""
    from codec import chroma, format, luma
    from codec.color import ycbcr_to_rgb
    from codec.upscale import apply_upscale

    data, _ = low_rate
    container = format.parse_container(data)
    height, width = container.height, container.width
    stream = luma.decode_luma(container.sections["luma"], container.luma_codec, container.luma_scale, height, width)
    full_luma = apply_upscale(stream, height, width, container.luma_scale, len(container.sections["luma"]))
    hints = chroma.read_hints(container.hint_layout, container.sections["hints"], stream, height, width)
    expected = ycbcr_to_rgb(full_luma, *chroma.colorize(full_luma, hints))
    assert np.array_equal(np.asarray(codec.decode(data, baseline=("deblock", "upscale"))), expected)


def test_grayscale_and_partial_decodes_go_through_stage_4(photo, low_rate):
    gray = codec.encode(photo.convert("L"), quality=10)
    assert not np.array_equal(np.asarray(codec.decode(gray)), np.asarray(codec.decode(gray, baseline=("deblock",))))
    data, _ = low_rate
    cut = data[:codec.info(data)["sections"]["luma"] + 40]
    partial = codec.decode(cut, partial=True)
    assert partial.info.get("nnc_partial")
    assert not np.array_equal(np.asarray(partial), np.asarray(codec.decode(cut, partial=True, baseline=("deblock",))))


def test_decoding_gives_the_same_bytes_with_one_or_two_threads_and_twice():
    with Image.open(SAMPLE_PHOTO) as image:
        data = codec.encode(image.convert("RGB").crop((0, 0, 520, 300)), quality=5)  # 3 x 2 tiles of 256
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
        data, _ = encoder.encode(10)
        assert np.array_equal(encoder.decoded_luma(encoder.choose_luma(10)),
                              np.asarray(codec.decode(data, baseline=stages)))


def test_condition_grows_with_the_rate_and_scale():
    low, high = deblock_condition(100, 10_000, 1), deblock_condition(1000, 10_000, 1)
    assert low[0] < high[0] and low[1] == 0.0
    assert deblock_condition(100, 10_000, 4)[1] == 1.0
    assert -1.0 <= deblock_condition(1, 10**9, 1)[0] and deblock_condition(10**9, 1, 1)[0] <= 2.0


def test_files_of_the_classical_release_decode_without_deblocking(low_rate):
    """A file naming model version e3b0c442 (nnc 0.1) decodes with stage 4 as the identity."""
    from codec import format

    data, _ = low_rate
    container = format.parse_container(data)
    container.model_version = bytes.fromhex("e3b0c442")
    old = format.build_container(container)
    assert np.array_equal(np.asarray(codec.decode(old)), np.asarray(codec.decode(data, baseline=("deblock",))))
