"""The segmentation is part of the format: it must give the same labels on every machine."""

from __future__ import annotations

import hashlib

import numpy as np

from codec.segmentation import segment_luma


def _luma(height: int, width: int) -> np.ndarray:
    """A deterministic integer test picture: rings and stripes, no random generator involved."""
    ys, xs = np.mgrid[0:height, 0:width]
    return ((ys * ys + 3 * xs * xs) // 37 + 11 * (xs // 9) + 5 * ys) % 256


def test_labels_are_bit_exact_golden():
    segmentation = segment_luma(_luma(61, 83).astype(np.uint8), step=7)
    digest = hashlib.sha256(segmentation.labels.astype("<i4").tobytes()).hexdigest()
    assert segmentation.count == 108
    assert digest == GOLDEN_LABELS_SHA256


def test_labels_cover_every_segment_and_follow_seed_order():
    segmentation = segment_luma(_luma(40, 50).astype(np.uint8), step=6)
    assert set(np.unique(segmentation.labels)) == set(range(segmentation.count))
    seeds = segmentation.seed_row * segmentation.grid_shape[1] + segmentation.seed_col
    assert np.all(np.diff(seeds) > 0)


def test_tiny_planes():
    for shape in [(1, 1), (1, 9), (9, 1), (2, 3)]:
        segmentation = segment_luma(np.full(shape, 100, np.uint8), step=2)
        assert segmentation.labels.shape == shape and segmentation.count >= 1


GOLDEN_LABELS_SHA256 = "c660231dc4c6bc1109b4f23c1ce2fc13c6194ee28ce7d775e248a5dcbd64a6b0"
