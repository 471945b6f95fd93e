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


def _neighbours(count: int, offset: int) -> tuple[slice, slice]:
    """Along one axis of ``count`` cells: (the cells whose neighbour at ``offset`` exists, those neighbours)."""
    return slice(max(0, -offset), count - max(0, offset)), slice(max(0, offset), count + min(0, offset))


def _assign(blocks: np.ndarray, centres: tuple[np.ndarray, np.ndarray, np.ndarray], step: int) -> np.ndarray:
    """Label of each pixel: the nearest of the 3x3 seeds around its cell (first in _OFFSETS on ties).

    blocks: (rows, step, cols, step) the luma plane padded to whole cells, cell (r, c) at
    ``blocks[r, :, c, :]``; centres: the seeds' (y, x, luma), each (rows, cols) int64. Returns the
    labels in the same layout, int32 (those of padding pixels included: the caller drops them).
    Distances are exact integers: int32 where their bound (a pixel is less than 3 cells from a
    neighbouring seed's centre) allows, else int64."""
    rows, _, cols, _ = blocks.shape
    bound = 255**2 * step**2 + COMPACTNESS**2 * 2 * (3 * step) ** 2
    dtype = np.int32 if bound <= np.iinfo(np.int32).max else np.int64
    luma = blocks.astype(dtype)
    ys = (np.arange(rows * step, dtype=dtype).reshape(rows, step))[:, :, None, None]
    xs = (np.arange(cols * step, dtype=dtype).reshape(cols, step))[None, None]
    seeds = np.arange(rows * cols, dtype=np.int32).reshape(rows, cols)
    best_distance = np.full(blocks.shape, np.iinfo(dtype).max, dtype)
    labels = np.zeros(blocks.shape, np.int32)
    for d_row, d_col in _OFFSETS:
        # the cells (r, c) whose neighbour (r + d_row, c + d_col) exists, and those neighbours
        (my_rows, their_rows), (my_cols, their_cols) = _neighbours(rows, d_row), _neighbours(cols, d_col)
        centre_y, centre_x, centre_l = (centre[their_rows, their_cols].astype(dtype)[:, None, :, None]
                                        for centre in centres)
        distance = (luma[my_rows, :, my_cols] - centre_l) ** 2 * (step * step) + COMPACTNESS**2 * (
            (ys[my_rows] - centre_y) ** 2 + (xs[:, :, my_cols] - centre_x) ** 2
        )
        best = best_distance[my_rows, :, my_cols]
        closer = distance < best
        np.copyto(best, distance, where=closer)
        np.copyto(labels[my_rows, :, my_cols], seeds[their_rows, their_cols][:, None, :, None], where=closer)
    return labels


def segment_luma(luma: np.ndarray, step: int) -> Segmentation:
    """Segment a (h, w) uint8 luma plane into superpixels seeded every ``step`` pixels (step >= 2)."""
    if luma.dtype != np.uint8:
        raise ValueError(f"the segmentation reads uint8 luma, not {luma.dtype}")
    height, width = luma.shape
    grid_shape = rows, cols = (-(-height // step), -(-width // step))
    padded = np.zeros((rows * step, cols * step), luma.dtype)
    padded[:height, :width] = luma
    blocks = padded.reshape(rows, step, cols, step)
    luma_int = luma.astype(np.int64)
    ys, xs = np.meshgrid(np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64), indexing="ij")
    centres = _initial_centres(luma, step)
    seed_count = rows * cols

    def assign() -> np.ndarray:
        """(h, w) int32: each pixel's seed at the current centres (``_assign``, padding dropped)."""
        labels = _assign(blocks, tuple(c.reshape(grid_shape) for c in centres), step)
        return labels.reshape(padded.shape)[:height, :width]

    for _ in range(ITERATIONS):
        flat = assign().ravel()
        sizes = np.bincount(flat, minlength=seed_count)
        filled = sizes > 0
        for centre, values in zip(centres, (ys, xs, luma_int)):
            # float64 sums of integers below 2**53 are exact in any order
            sums = np.bincount(flat, weights=values.ravel(), minlength=seed_count).astype(np.int64)
            centre[filled] = sums[filled] // sizes[filled]
    labels = assign()
    used = np.flatnonzero(np.bincount(labels.ravel(), minlength=seed_count))
    compact = np.zeros(seed_count, dtype=np.int32)
    compact[used] = np.arange(len(used), dtype=np.int32)
    return Segmentation(
        labels=compact[labels],
        seed_row=(used // grid_shape[1]).astype(np.int32),
        seed_col=(used % grid_shape[1]).astype(np.int32),
        grid_shape=grid_shape,
    )
