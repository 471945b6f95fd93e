"""Stage 3: color hints. The encoder picks hints; the decoder colorizes the luma from them.

Two layouts (spec 5.4, 5.5):
- ``segments``: one quantised (Cb, Cr) per superpixel of the decoded luma stream. The decoder
  finds the same superpixels, so positions cost nothing.
- ``grid``: a Cb | Cr thumbnail at 1/2, 1/4 or 1/8 resolution (or Cb and Cr at full size, from
  quality 50 on) coded as one HEVC plane.
Colorization: the classical baseline fills each segment with its hint or upsamples the thumbnail
bicubically; the learned stage (``HintColorizer``) corrects that picture from the full-size
decoded luma, so chroma edges follow luma edges. It knows the hints' layout, spacing and bits per
hint value (all read from the file). The file's color strength (format 2.0) scales that correction
per plane: the encoder picks the share that brings each plane closest to the source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from . import entropy, format, hevc
from .color import downsample, reduced_size, to_uint8, upsample_bicubic
from .errors import FormatError
from .metrics import squared_error
from .runtime import run_network
from .segmentation import Segmentation, segment_luma
from .upscale import rate_condition

KEEP_MEAN_STEPS = 16  # a keep_mean colorizer's output is shifted in sixteenths of a level (exact sums)


@dataclass
class Hints:
    """Decoded color hints: what the colorizer reads (one of the two layouts' fields is set)."""

    layout: str  # "grid" or "segments"
    thumbnail: np.ndarray | None = None  # grid: (h, 2w) uint8, Cb | Cr side by side
    labels: np.ndarray | None = None  # segments: (h, w) int32, the segment of each luma-stream pixel
    levels: tuple[np.ndarray, np.ndarray] | None = None  # segments: (count,) uint8 Cb and Cr per segment
    factor: int = 0  # grid: the thumbnail's downsampling factor (1: full size, 2, 4 or 8)
    payload_bytes: int = 0  # size of the hints section's payload

    @property
    def samples(self) -> int:
        """Hint values per chroma plane: thumbnail samples or segments."""
        return self.thumbnail.size // 2 if self.layout == "grid" else len(self.levels[0])


@dataclass
class HintCandidate:
    """One way to code the chroma: layout, coding parameters, payload, and the hints it decodes to."""

    layout: str
    params: dict
    payload: bytes
    hints: Hints

    @property
    def bits(self) -> int:
        return 8 * len(self.payload)


def _full_res_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) int32 segment labels from the luma stream's (h, w): each pixel takes its
    nearest luma-stream pixel's label."""
    low_height, low_width = labels.shape
    rows = np.arange(height) * low_height // height
    cols = np.arange(width) * low_width // width
    return labels[rows[:, None], cols[None, :]]


def _hint_predictions(segmentation: Segmentation):
    """For each segment in order: (left, up) segment indices in the seed grid, -1 where absent."""
    rows, cols = segmentation.grid_shape
    index_at = np.full(rows * cols, -1, dtype=np.int64)
    seeds = segmentation.seed_row.astype(np.int64) * cols + segmentation.seed_col
    index_at[seeds] = np.arange(segmentation.count)
    left = np.where(segmentation.seed_col > 0, index_at[np.maximum(seeds - 1, 0)], -1)
    up = np.where(segmentation.seed_row > 0, index_at[np.maximum(seeds - cols, 0)], -1)
    return left, up


def _quant_radius(quant_step: int) -> int:
    return -(-255 // quant_step)


def _predict(values: np.ndarray, index: int, left: int, up: int, quant_step: int) -> int:
    """Prediction of hint ``index`` from already-coded values (spec 5.4.2): the mean of its left and
    up neighbours, the one there is, the previous hint, or mid-gray for the first."""
    if left >= 0 and up >= 0:
        return int(values[left] + values[up] + 1) // 2
    if left >= 0 or up >= 0:
        return int(values[max(left, up)])
    return int(values[index - 1]) if index else (128 + quant_step // 2) // quant_step


def _residuals(values: np.ndarray, left: np.ndarray, up: np.ndarray, quant_step: int) -> np.ndarray:
    """Encoder: each quantised hint value minus its prediction."""
    return np.array([values[index] - _predict(values, index, left[index], up[index], quant_step)
                     for index in range(len(values))], dtype=np.int64)


def _reconstruct(residuals: np.ndarray, left: np.ndarray, up: np.ndarray, quant_step: int) -> np.ndarray:
    """Decoder: quantised hint values from residuals, in coding order."""
    values = np.zeros(len(residuals), dtype=np.int64)
    for index, residual in enumerate(residuals.tolist()):
        values[index] = _predict(values, index, left[index], up[index], quant_step) + residual
    return values


def encode_segment_hints(cb: np.ndarray, cr: np.ndarray, luma_stream: np.ndarray, segment_step: int,
                         quant_step: int, segmentation: Segmentation | None = None) -> HintCandidate:
    """Code one mean (Cb, Cr) per segment of ``luma_stream`` ((h, w) uint8, decoded).

    cb, cr: (H, W) float planes in [0, 255]. segment_step: seed spacing in luma-stream pixels.
    """
    height, width = cb.shape
    segmentation = segmentation or segment_luma(luma_stream, segment_step)
    labels = _full_res_labels(segmentation.labels, height, width).ravel()
    sizes = np.bincount(labels, minlength=segmentation.count)
    left, up = _hint_predictions(segmentation)
    radius = _quant_radius(quant_step)
    streams, levels = [], []
    for plane in (cb, cr):
        means = np.bincount(labels, weights=plane.ravel(), minlength=segmentation.count) / sizes
        values = np.clip(np.rint(means / quant_step), 0, radius).astype(np.int64)
        residuals = _residuals(values, left, up, quant_step)
        streams.append((residuals, entropy.best_spread(residuals)))
        levels.append(_levels(values, quant_step))
    payload = format.SegmentHints.build({
        "segment_step": segment_step, "quant_step": quant_step, "hint_count": segmentation.count,
        "cb_spread": streams[0][1], "cr_spread": streams[1][1],
        "coded": entropy.encode_residuals(streams, radius),
    })
    return HintCandidate("segments", {"segment_step": segment_step, "quant_step": quant_step,
                                      "hints": segmentation.count}, payload,
                         Hints("segments", labels=segmentation.labels, levels=tuple(levels),
                               payload_bytes=len(payload)))


def _levels(values: np.ndarray, quant_step: int) -> np.ndarray:
    """(count,) uint8 chroma levels of quantised hint values (spec 5.4.3)."""
    return np.minimum(values * quant_step, 255).astype(np.uint8)


def read_segment_hints(payload: bytes, luma_stream: np.ndarray, height: int, width: int) -> Hints:
    """The hints of a SegmentHints payload, given the decoded (h, w) uint8 luma stream."""
    hints = format.parse_payload(format.SegmentHints, payload, "segment hints")
    if hints.segment_step < 2 or hints.quant_step < 1 or not (1 <= hints.cb_spread and 1 <= hints.cr_spread):
        raise FormatError("segment hints: reserved parameter value")
    segmentation = segment_luma(luma_stream, hints.segment_step)
    if segmentation.count != hints.hint_count:
        raise FormatError(f"segment hints: the file has {hints.hint_count} hints but the luma stream gives "
                          f"{segmentation.count} segments")
    radius = _quant_radius(hints.quant_step)
    residuals = entropy.decode_residuals(
        bytes(hints.coded), [(hints.hint_count, hints.cb_spread), (hints.hint_count, hints.cr_spread)], radius)
    left, up = _hint_predictions(segmentation)
    levels = tuple(_levels(np.clip(_reconstruct(r, left, up, hints.quant_step), 0, radius), hints.quant_step)
                   for r in residuals)
    return Hints("segments", labels=segmentation.labels, levels=levels, payload_bytes=len(payload))


def grid_thumbnail(cb: np.ndarray, cr: np.ndarray, factor_log2: int) -> np.ndarray:
    """Cb | Cr, each (H, W) float, downsampled by 2**factor_log2 and put side by side: (h, 2w) uint8."""
    thumb_height, thumb_width = reduced_size(*cb.shape, 1 << factor_log2)
    return np.concatenate([to_uint8(downsample(plane, thumb_height, thumb_width)) for plane in (cb, cr)], axis=1)


def encode_grid_hints(cb: np.ndarray, cr: np.ndarray, factor_log2: int, quality: int,
                      thumbnail: np.ndarray | None = None) -> HintCandidate:
    """Code Cb | Cr downsampled by 2**factor_log2 as one HEVC plane at x265 ``quality``.

    thumbnail: ``grid_thumbnail(cb, cr, factor_log2)``, when the caller already has it."""
    height, width = cb.shape
    thumb_height, thumb_width = reduced_size(height, width, 1 << factor_log2)
    thumbnail = grid_thumbnail(cb, cr, factor_log2) if thumbnail is None else thumbnail
    tiles = hevc.encode_plane(thumbnail, quality)
    payload = format.GridHints.build({"factor_log2": factor_log2, "thumbnail": format.build_hevc_plane(tiles)})
    return HintCandidate("grid", {"factor": 1 << factor_log2, "quality": quality}, payload,
                         Hints("grid", thumbnail=hevc.decode_plane(tiles, thumb_height, 2 * thumb_width),
                               factor=1 << factor_log2, payload_bytes=len(payload)))


def read_grid_hints(payload: bytes, height: int, width: int) -> Hints:
    """The hints of a GridHints payload: the decoded Cb | Cr thumbnail."""
    hints = format.parse_payload(format.GridHints, payload, "grid hints")
    if not 0 <= hints.factor_log2 <= 3:
        raise FormatError(f"grid hints: reserved factor_log2 {hints.factor_log2}")
    thumb_height, thumb_width = reduced_size(height, width, 1 << hints.factor_log2)
    thumbnail = hevc.decode_plane(format.hevc_plane_tiles(bytes(hints.thumbnail), "grid hints"), thumb_height,
                                  2 * thumb_width)
    return Hints("grid", thumbnail=thumbnail, factor=1 << hints.factor_log2, payload_bytes=len(payload))


def read_hints(layout: str, payload: bytes, luma_stream: np.ndarray, height: int, width: int) -> Hints:
    """The normative part of stage 3: the hints of a hints section of ``layout`` ("grid" or "segments").

    luma_stream: the decoded (h, w) uint8 luma stream (segment positions derive from it)."""
    if layout == "segments":
        return read_segment_hints(payload, luma_stream, height, width)
    return read_grid_hints(payload, height, width)


def classical_colorize(hints: Hints, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline of stage 3: (Cb, Cr), each (height, width) uint8: each segment filled with its
    hint, or the thumbnail upsampled bicubically (at full size, factor 1: its halves as they are)."""
    if hints.layout == "segments":
        labels = _full_res_labels(hints.labels, height, width)
        return tuple(levels[labels] for levels in hints.levels)
    thumb_width = hints.thumbnail.shape[1] // 2
    halves = (hints.thumbnail[:, :thumb_width], hints.thumbnail[:, thumb_width:])
    if hints.factor == 1:
        return tuple(np.ascontiguousarray(half) for half in halves)
    return tuple(upsample_bicubic(np.ascontiguousarray(half), height, width) for half in halves)


def colorize_condition(hints: Hints, height: int, width: int) -> tuple[float, float, float]:
    """The colorizer's condition input for hints of an image of (height, width): the layout (0 grid,
    1 segments), log2 of the full-size pixels between hints / 4 (the thumbnail's factor, or the
    square root of the pixels per segment), and ``upscale.rate_condition`` of the hints section's
    bytes over its hint values (both planes). Full-size grid hints (factor 1) have none: no network
    runs on them."""
    if hints.payload_bytes < 1 or (hints.layout == "grid" and hints.factor < 2):
        raise ValueError("hints without their payload size, or full-size grid hints, have no condition")
    spacing = hints.factor if hints.layout == "grid" else math.sqrt(height * width / max(hints.samples, 1))
    return (float(hints.layout == "segments"), math.log2(max(spacing, 1.0)) / 4.0,
            rate_condition(hints.payload_bytes, 2 * hints.samples))


FULL_STRENGTH = format.COLOR_STRENGTH_FULL  # the color_strength nibble (spec 3.1) that applies the correction as it is
FULL_STRENGTHS = (FULL_STRENGTH, FULL_STRENGTH)  # (Cb, Cr): files without the field
MAX_STRENGTH = format.COLOR_STRENGTH_MAX


def colorize(luma: np.ndarray, hints: Hints, network: Callable[[], nn.Module | None] | None = None,
             threads: int | None = None, strength: tuple[int, int] = FULL_STRENGTHS,
             ) -> tuple[np.ndarray, np.ndarray]:
    """Stage 3 proper: (Cb, Cr), each (H, W) uint8, from the full-size decoded (H, W) uint8 luma
    (the output of stage 2) and the hints.

    network: gives the stage's ``HintColorizer``, or None for the classical baseline (which does
    not read the luma). A full-size thumbnail (factor 1) is the chroma itself: no network runs.
    threads: CPU threads of the network (None: one per core). strength: the file's color_strength
    (Cb, Cr), each 0..15: the network's correction of that plane is scaled by it / 8."""
    height, width = luma.shape
    classical = classical_colorize(hints, height, width)
    full_size = hints.layout == "grid" and hints.factor == 1
    model = network() if network is not None and not full_size else None
    if model is None:
        return classical
    output = network_colors(model, luma, classical, colorize_condition(hints, height, width), threads)
    return finish_colors(output, classical, strength, keep_mean=model.keep_mean)


def network_colors(model: nn.Module, luma: np.ndarray, classical: tuple[np.ndarray, np.ndarray] | np.ndarray,
                   condition: tuple[float, ...], threads: int | None = None) -> np.ndarray:
    """The ``HintColorizer`` ``model``'s (2, H, W) float32 Cb and Cr in sample units (0..255, not
    rounded): its correction of the ``classical`` (Cb, Cr) ((H, W) uint8 each) guided by the (H, W)
    uint8 luma; condition: ``colorize_condition`` of the hints."""
    planes = np.stack([luma, *classical])
    output = run_network(model, planes.astype(np.float32) / np.float32(255.0), condition, threads)
    return output * np.float32(255.0)


def finish_colors(output: np.ndarray, classical: tuple[np.ndarray, np.ndarray] | np.ndarray,
                  strength: tuple[int, int] = FULL_STRENGTHS, *, keep_mean: bool) -> tuple[np.ndarray, np.ndarray]:
    """(Cb, Cr) (H, W) uint8 from the network's (2, H, W) float32 ``output`` (``network_colors``)
    and the ``classical`` (Cb, Cr), plane by plane (``_finish_plane``) at its ``strength``;
    keep_mean: the model's (``HintColorizer.keep_mean``)."""
    cb, cr = (_finish_plane(*args, keep_mean) for args in zip(output, classical, strength))
    return cb, cr


def _finish_plane(output: np.ndarray, classical: np.ndarray, strength: int, keep_mean: bool) -> np.ndarray:
    """(H, W) uint8: the network's correction of the ``classical`` plane in ``output`` ((H, W)
    float32) scaled by ``strength`` / 8 in float32 (skipped at 8, so that files from before
    color_strength decode as they did), then rounded, with ``keep_mean`` (the model's) first made
    zero-mean over the image (``_keep_mean``)."""
    if not 0 <= strength <= MAX_STRENGTH:
        raise ValueError(f"color strength {strength} is not in 0..{MAX_STRENGTH}")
    if strength != FULL_STRENGTH:
        base = np.asarray(classical, np.float32)
        output = base + (output - base) * np.float32(strength / FULL_STRENGTH)
    return _keep_mean(output, classical) if keep_mean else to_uint8(output)


def best_colors(output: np.ndarray, classical: tuple[np.ndarray, np.ndarray] | np.ndarray,
                source: tuple[np.ndarray, np.ndarray], *, keep_mean: bool,
                ) -> tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """(color_strength, (Cb, Cr) as ``finish_colors`` outputs them at it): per plane, of the two
    strengths around the least-squares scale of the network's correction toward the ``source``
    ((H, W) float), the one whose finished plane is closer to it in squared error."""
    strengths, planes = [], []
    for plane, reference, target in zip(output, classical, source):
        base = np.asarray(reference, np.float32)
        correction = (plane - base).ravel()
        energy = float(np.dot(correction, correction))
        scale = float(np.dot((np.asarray(target, np.float32) - base).ravel(), correction)) / energy if energy else 0.0
        low = int(np.clip(math.floor(scale * FULL_STRENGTH), 0, MAX_STRENGTH))
        finished = {value: _finish_plane(plane, reference, value, keep_mean)
                    for value in sorted({low, min(low + 1, MAX_STRENGTH)})}
        value = min(finished, key=lambda option: squared_error(target, finished[option]))
        strengths.append(value)
        planes.append(finished[value])
    return (strengths[0], strengths[1]), (planes[0], planes[1])


def refine_colors(model: nn.Module, luma: np.ndarray, classical: tuple[np.ndarray, np.ndarray] | np.ndarray,
                  condition: tuple[float, ...], threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The learned part of stage 3 at full strength: (Cb, Cr), each (H, W) uint8, the
    ``HintColorizer`` ``model``'s correction of the ``classical`` (Cb, Cr) ((H, W) uint8 each)
    guided by the (H, W) uint8 luma; condition: ``colorize_condition`` of the hints. A model with
    ``keep_mean`` has its correction's mean over the image taken away (``_keep_mean``)."""
    output = network_colors(model, luma, classical, condition, threads)
    return finish_colors(output, classical, keep_mean=model.keep_mean)


def _keep_mean(output: np.ndarray, classical: np.ndarray) -> np.ndarray:
    """(H, W) uint8 from the network's (H, W) float32 output plane (sample units), shifted so that
    its mean is the ``classical`` (H, W) uint8 plane's to within 1/32 of a level, in integer
    sixteenths of a level (spec, stage 3): no network cast, the same bytes everywhere."""
    pixels = output.size
    sixteenths = np.rint(output * np.float32(KEEP_MEAN_STEPS)).astype(np.int64)
    excess = int(sixteenths.sum()) - KEEP_MEAN_STEPS * int(np.asarray(classical).sum(dtype=np.int64))
    shift = (2 * excess + pixels) // (2 * pixels)  # excess / pixels rounded, halves up
    return np.clip((sixteenths - shift + KEEP_MEAN_STEPS // 2) // KEEP_MEAN_STEPS, 0, 255).astype(np.uint8)
