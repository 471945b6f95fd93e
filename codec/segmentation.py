"""Exact integer superpixel segmentation of the decoded luma stream (spec 5.4.1).

Encoder and decoder both segment the same decoded luma, so segment positions cost no bits; this
only works if both get the same labels on every machine. The algorithm is SLIC (simple linear
iterative clustering) on luma alone, in integer arithmetic with fixed tie-breaking: every step is
exact, so the labels are identical across CPUs, numpy versions and thread counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITERATIONS = 4
COMPACTNESS = 20  # weight of spatial distance against luma distance (luma in 0..255)
_OFFSETS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]  # candidate seeds, tie-break order


@dataclass
class Segmentation:
    """Segments of a (h, w) luma plane.

    labels: (h, w) int32, segment index per pixel, 0..count-1, in seed order.
    seed_row, seed_col: (count,) int32, position of each segment's seed in the seed grid.
    grid_shape: (rows, cols) of the seed grid.
    """

    labels: np.ndarray
    seed_row: np.ndarray
    seed_col: np.ndarray
    grid_shape: tuple[int, int]

    @property
    def count(self) -> int:
        return len(self.seed_row)


def _initial_centres(luma: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    height, width = luma.shape
    rows, cols = -(-height // step), -(-width // step)
    tops = np.arange(rows, dtype=np.int64) * step
    lefts = np.arange(cols, dtype=np.int64) * step
    centre_y = tops + (np.minimum(step, height - tops) - 1) // 2
    centre_x = lefts + (np.minimum(step, width - lefts) - 1) // 2
    grid_y, grid_x = np.meshgrid(centre_y, centre_x, indexing="ij")
    return grid_y.ravel(), grid_x.ravel(), luma[grid_y, grid_x].astype(np.int64).ravel()


def _assign(luma: np.ndarray, ys: np.ndarray, xs: np.ndarray, cell_row: np.ndarray, cell_col: np.ndarray,
            grid_shape: tuple[int, int], centres: tuple[np.ndarray, np.ndarray, np.ndarray], step: int) -> np.ndarray:
    """Label of each pixel: the nearest of the 3x3 seeds around its cell (first in _OFFSETS on ties)."""
    rows, cols = grid_shape
    centre_y, centre_x, centre_l = centres
    best_distance = np.full(luma.shape, np.iinfo(np.int64).max, dtype=np.int64)
    labels = np.zeros(luma.shape, dtype=np.int64)
    for d_row, d_col in _OFFSETS:
        row, col = cell_row + d_row, cell_col + d_col
        valid = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        seed = np.clip(row, 0, rows - 1) * cols + np.clip(col, 0, cols - 1)
        distance = (luma - centre_l[seed]) ** 2 * (step * step) + COMPACTNESS**2 * (
            (ys - centre_y[seed]) ** 2 + (xs - centre_x[seed]) ** 2
        )
        closer = valid & (distance < best_distance)
        best_distance[closer] = distance[closer]
        labels[closer] = seed[closer]
    return labels


def segment_luma(luma: np.ndarray, step: int) -> Segmentation:
    """Segment a (h, w) uint8 luma plane into superpixels seeded every ``step`` pixels (step >= 2)."""
    height, width = luma.shape
    grid_shape = (-(-height // step), -(-width // step))
    luma_int = luma.astype(np.int64)
    ys, xs = np.meshgrid(np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64), indexing="ij")
    cell_row, cell_col = ys // step, xs // step
    centre_y, centre_x, centre_l = _initial_centres(luma, step)
    seed_count = len(centre_y)
    for _ in range(ITERATIONS):
        labels = _assign(luma_int, ys, xs, cell_row, cell_col, grid_shape, (centre_y, centre_x, centre_l), step)
        flat = labels.ravel()
        sizes = np.bincount(flat, minlength=seed_count)
        filled = sizes > 0
        for centre, values in ((centre_y, ys), (centre_x, xs), (centre_l, luma_int)):
            # float64 sums of integers below 2**53 are exact in any order
            sums = np.bincount(flat, weights=values.ravel(), minlength=seed_count).astype(np.int64)
            centre[filled] = sums[filled] // sizes[filled]
    labels = _assign(luma_int, ys, xs, cell_row, cell_col, grid_shape, (centre_y, centre_x, centre_l), step)
    used = np.flatnonzero(np.bincount(labels.ravel(), minlength=seed_count))
    compact = np.zeros(seed_count, dtype=np.int32)
    compact[used] = np.arange(len(used), dtype=np.int32)
    return Segmentation(
        labels=compact[labels],
        seed_row=(used // grid_shape[1]).astype(np.int32),
        seed_col=(used % grid_shape[1]).astype(np.int32),
        grid_shape=grid_shape,
    )
