"""Runs a network over an image on the CPU: overlapping tiles, bounded memory, a settable thread count.

Every learned stage goes through ``run_network``; the encoder codes its x265 candidates side by
side through ``run_side_by_side``. Tiles overlap by the network's receptive-field
radius, so each output pixel is computed from exactly the inputs it would see untiled: no seams.
Determinism: the tile grid depends only on the image size, and each tile runs on one torch
thread (``threads`` tiles at a time), so the float results, hence the decoded bytes, do not
depend on the thread count or on scheduling.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch
from torch import nn

TILE_SIDE = 256  # output pixels per tile side; a 24-channel net then needs ~30 MB of activations.
# Part of the reference decoder: the tile grid sets the shape of every convolution torch runs.
_THREAD_SETTING = threading.Lock()  # torch's thread count is process-wide: one network run sets it at a time
_T = TypeVar("_T")  # a job's result (run_side_by_side)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore torch's setting."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def default_threads() -> int:
    """Threads used when none are given: one per CPU core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_side_by_side(jobs: list[Callable[[], _T]], threads: int = 2,
                     starting: Callable[[int], None] | None = None) -> list[_T]:
    """The results of ``jobs``, in their order, at most ``threads`` running at a time, each started
    in order as an earlier one ends; ``starting(index)`` is called in the caller's thread as job
    ``index`` starts. For the encoder's x265 runs, which release the GIL: on 2 cores x265 does
    not keep both busy with a picture of nnc's sizes, so two candidates coded side by side take
    less time (the same bytes). On an error (or Ctrl-C) no further job starts; it is raised once
    the running ones end."""
    notify = starting or (lambda index: None)
    if threads == 1 or len(jobs) <= 1:
        results = []
        for index, job in enumerate(jobs):
            notify(index)
            results.append(job())
        return results
    pool = ThreadPoolExecutor(min(threads, len(jobs)))
    try:
        futures: list[Future] = []
        results = []
        for index, job in enumerate(jobs):
            if index >= threads:
                results.append(futures[index - threads].result())
            notify(index)
            futures.append(pool.submit(job))
        return results + [future.result() for future in futures[len(results):]]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _tiles(height: int, width: int, tile_side: int, radius: int) -> list[tuple[slice, slice, slice, slice]]:
    """(output rows, output cols, input rows, input cols) of each tile, in a fixed order."""
    tiles = []
    for top in range(0, height, tile_side):
        for left in range(0, width, tile_side):
            bottom, right = min(top + tile_side, height), min(left + tile_side, width)
            in_top, in_left = max(0, top - radius), max(0, left - radius)
            tiles.append((slice(top, bottom), slice(left, right),
                          slice(in_top, min(height, bottom + radius)), slice(in_left, min(width, right + radius))))
    return tiles


def run_network(network: nn.Module, planes: np.ndarray, condition: tuple[float, ...],
                threads: int | None = None, tile_side: int = TILE_SIDE) -> np.ndarray:
    """Apply ``network(image, condition)`` to (C, H, W) float32 planes, tile by tile.

    ``network`` has a ``RADIUS`` attribute (pixels of context each side of an output pixel) and
    maps (1, C, h, w) to (1, C', h, w), C' its ``out_channels`` attribute if it has one, else C; a
    network with a ``scale`` attribute folds scale x scale blocks: the planes are edge-padded at the
    bottom and right to multiples of it (the output cropped back), and ``tile_side`` must be a
    multiple of it (ValueError otherwise). condition: the network's per-image inputs. threads:
    tiles run at once, each on one torch thread (None: one per core). Returns (C', H, W) float32,
    equal (up to float rounding) to running the network on the whole image, and the same bytes
    for any ``threads``."""
    channels, height, width = planes.shape
    scale = getattr(network, "scale", 1)  # a network folding scale x scale blocks needs windows aligned to them
    if tile_side % scale:
        raise ValueError(f"tiles of {tile_side} do not align to the network's {scale}x{scale} blocks")
    if height % scale or width % scale:
        padded = np.pad(planes, ((0, 0), (0, -height % scale), (0, -width % scale)), mode="edge")
        return run_network(network, padded, condition, threads, tile_side)[:, :height, :width]
    result = np.empty((getattr(network, "out_channels", channels), height, width), np.float32)
    condition_tensor = torch.tensor([condition], dtype=torch.float32)

    def run_tile(tile: tuple[slice, slice, slice, slice]) -> None:
        rows, cols, in_rows, in_cols = tile
        window = torch.from_numpy(np.ascontiguousarray(planes[:, in_rows, in_cols]))[None]
        with torch.inference_mode():  # thread-local: entered in the thread that runs the tile
            output = network(window.contiguous(memory_format=torch.channels_last), condition_tensor)
        result[:, rows, cols] = output[0, :, rows.start - in_rows.start:rows.stop - in_rows.start,
                                       cols.start - in_cols.start:cols.stop - in_cols.start].numpy()

    tiles = _tiles(height, width, tile_side, network.RADIUS)
    workers = min(threads or default_threads(), len(tiles))
    with _THREAD_SETTING, torch_threads(1):
        if workers == 1:
            for tile in tiles:
                run_tile(tile)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run_tile, tiles))
    return result
