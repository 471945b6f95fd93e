"""Colour conversion: exact integer decoding, chunked processing equal to the whole-array formula."""

from __future__ import annotations

import numpy as np

from codec.color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb


def test_ycbcr_to_rgb_matches_libjpeg_fixed_point_on_every_row_chunk():
    rng = np.random.default_rng(3)
    y, cb, cr = (rng.integers(0, 256, (600, 7), dtype=np.uint8) for _ in range(3))
    rgb = ycbcr_to_rgb(y, cb, cr).astype(np.int64)
    cb_c, cr_c = cb.astype(np.int64) - 128, cr.astype(np.int64) - 128
    assert np.array_equal(rgb[..., 0], np.clip(y + ((91881 * cr_c + 32768) >> 16), 0, 255))
    assert np.array_equal(rgb[..., 1], np.clip(y + ((-22554 * cb_c - 46802 * cr_c + 32768) >> 16), 0, 255))
    assert np.array_equal(rgb[..., 2], np.clip(y + ((116130 * cb_c + 32768) >> 16), 0, 255))


def test_round_trip_is_within_one_level():
    rgb = np.random.default_rng(4).integers(0, 256, (300, 9, 3), dtype=np.uint8)
    back = ycbcr_to_rgb(*(to_uint8(plane) for plane in rgb_to_ycbcr(rgb)))
    assert np.abs(back.astype(int) - rgb).max() <= 2
    gray = np.repeat(rgb[..., :1], 3, axis=-1)
    luma, cb, cr = rgb_to_ycbcr(gray)
    assert np.allclose(luma, gray[..., 0], atol=1e-3) and np.allclose(cb, 128, atol=1e-3)
