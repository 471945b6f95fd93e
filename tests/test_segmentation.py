"""The segmentation is part of the format: it must give the same labels on every machine."""

from __future__ import annotations

import hashlib

import numpy as np

from codec.segmentation import _assign, segment_luma


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


def _reference_assign(luma: np.ndarray, step: int, seed_y: np.ndarray, seed_x: np.ndarray,
                      seed_l: np.ndarray) -> np.ndarray:
    """format_spec.md 5.4.1 step 2, candidate by candidate for every pixel, in int64: (h, w) seed
    indices of the pixels, given the seeds' (rows * cols,) positions and luma."""
    height, width = luma.shape
    rows, cols = -(-height // step), -(-width // step)
    ys, xs = np.mgrid[0:height, 0:width]
    plane = luma.astype(np.int64)
    best = np.full(luma.shape, np.iinfo(np.int64).max)
    labels = np.zeros(luma.shape, np.int64)
    for d_row in (-1, 0, 1):
        for d_col in (-1, 0, 1):
            row, col = ys // step + d_row, xs // step + d_col
            exists = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
            k = np.where(exists, row * cols + col, 0)
            distance = ((plane - seed_l[k]) ** 2 * step**2
                        + 20**2 * ((ys - seed_y[k]) ** 2 + (xs - seed_x[k]) ** 2))
            closer = exists & (distance < best)
            best[closer], labels[closer] = distance[closer], k[closer]
    return labels


def _reference_labels(luma: np.ndarray, step: int) -> np.ndarray:
    """format_spec.md 5.4.1 steps 1-4 (int64, no cell blocks): the labels before seeds without
    pixels are dropped."""
    height, width = luma.shape
    rows, cols = -(-height // step), -(-width // step)
    ys, xs = np.mgrid[0:height, 0:width]
    seed_y = np.repeat(np.arange(rows) * step + (np.minimum(step, height - np.arange(rows) * step) - 1) // 2, cols)
    seed_x = np.tile(np.arange(cols) * step + (np.minimum(step, width - np.arange(cols) * step) - 1) // 2, rows)
    seed_l = luma[seed_y, seed_x].astype(np.int64)
    for _ in range(4):
        labels = _reference_assign(luma, step, seed_y, seed_x, seed_l)
        n = np.bincount(labels.ravel(), minlength=rows * cols)
        for values, seed in ((ys, seed_y), (xs, seed_x), (luma.astype(np.int64), seed_l)):
            sums = np.bincount(labels.ravel(), weights=values.ravel(), minlength=rows * cols).astype(np.int64)
            seed[n > 0] = sums[n > 0] // n[n > 0]
    return _reference_assign(luma, step, seed_y, seed_x, seed_l)


def test_labels_follow_the_spec_at_every_size_and_step():
    """The cell-blocked, int32 arithmetic of segment_luma gives the labels of the spec's
    definition: partial cells at the right and bottom, ties (flat and two-level planes) broken by
    the earliest offset, and steps whose distances need int64."""
    rng = np.random.default_rng(0)
    planes = [_luma(61, 83), rng.integers(0, 256, (37, 50)), rng.integers(0, 2, (45, 29)) * 255,
              np.full((20, 31), 7), _luma(1, 40), _luma(300, 420)]
    for plane in planes:
        for step in (2, 3, 7, 16, 200, 255):
            segmentation = segment_luma(plane.astype(np.uint8), step)
            reference = _reference_labels(plane.astype(np.uint8), step)
            used = np.flatnonzero(np.bincount(reference.ravel()))
            assert np.array_equal(segmentation.labels, np.searchsorted(used, reference)), (plane.shape, step)


def test_assignment_where_distances_reach_the_int32_limit():
    """Steps 172 (the largest distance fits int32) and 173 (it does not: int64), at the extremes a
    seed's centre can reach: luma 255 against centres of luma 0, 3 cells minus a pixel away."""
    for step in (172, 173):
        rows = cols = 4
        plane = np.full((rows * step, cols * step), 255, np.uint8)
        cell_row, cell_col = np.divmod(np.arange(rows * cols), cols)
        seed_y, seed_x = np.maximum(cell_row - 1, 0) * step, np.maximum(cell_col - 1, 0) * step  # a cell up-left
        seed_l = np.zeros(rows * cols, np.int64)
        blocks = plane.reshape(rows, step, cols, step)
        labels = _assign(blocks, tuple(c.reshape(rows, cols) for c in (seed_y, seed_x, seed_l)), step)
        reference = _reference_assign(plane, step, seed_y, seed_x, seed_l)
        assert np.array_equal(labels.reshape(plane.shape), reference), step


def test_tiny_planes():
    for shape in [(1, 1), (1, 9), (9, 1), (2, 3)]:
        segmentation = segment_luma(np.full(shape, 100, np.uint8), step=2)
        assert segmentation.labels.shape == shape and segmentation.count >= 1


GOLDEN_LABELS_SHA256 = "c660231dc4c6bc1109b4f23c1ce2fc13c6194ee28ce7d775e248a5dcbd64a6b0"
