"""Stage 1: the luma stream. Luma downsampled x1/x2/x4, coded as HEVC intra (luma codec ``hevc``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import format, hevc
from .color import downsample, reduced_size, to_uint8
from .errors import FormatError


@dataclass
class LumaCandidate:
    """The luma coded one way: scale, x265 quality, payload, the decoded stream and whether it was
    coded with HEVC's loop filters."""

    scale: int
    quality: int
    payload: bytes
    stream: np.ndarray  # (h, w) uint8, the decoded luma stream
    loop_filters: bool = True

    @property
    def bits(self) -> int:
        return 8 * len(self.payload)

    @property
    def key(self) -> tuple[int, int, bool]:
        """(scale, x265 quality, loop_filters): what tells the candidate from the others of an image."""
        return self.scale, self.quality, self.loop_filters

    @property
    def label(self) -> str:
        """For progress lines, e.g. "x1 at x265 quality 40 without loop filters"."""
        return f"x{self.scale} at x265 quality {self.quality}" + ("" if self.loop_filters else " without loop filters")


def stream_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """(h, w) of the luma stream of a (height, width) image at ``scale`` (1, 2 or 4)."""
    return reduced_size(height, width, scale)


def luma_stream(luma: np.ndarray, scale: int) -> np.ndarray:
    """The (h, w) uint8 stream to code: a (H, W) float luma plane downsampled by ``scale``."""
    low_height, low_width = stream_size(*luma.shape, scale)
    return to_uint8(luma if scale == 1 else downsample(luma, low_height, low_width))


def encode_luma(luma: np.ndarray, scale: int, quality: int, stream: np.ndarray | None = None,
                loop_filters: bool = True) -> LumaCandidate:
    """Code a (H, W) float luma plane downsampled by ``scale`` at x265 ``quality`` (0..100).

    stream: ``luma_stream(luma, scale)``, when the caller already has it (it codes several qualities).
    loop_filters: False codes it with HEVC's deblocking and SAO off (for a network trained without them)."""
    stream = luma_stream(luma, scale) if stream is None else stream
    tiles = hevc.encode_plane(stream, quality, loop_filters)
    return LumaCandidate(scale, quality, format.build_hevc_plane(tiles), hevc.decode_plane(tiles, *stream.shape),
                         loop_filters)


def decode_luma(payload: bytes, codec: str, scale: int, height: int, width: int) -> np.ndarray:
    """The decoded (h, w) uint8 luma stream of a luma section."""
    if codec != "hevc":
        raise FormatError(f"unknown luma codec '{codec}'")
    return hevc.decode_plane(format.hevc_plane_tiles(payload, "luma"), *stream_size(height, width, scale))


def loop_filtered(payload: bytes, codec: str) -> bool:
    """Whether a luma section's stream was coded with HEVC's loop filters, as its parameter sets
    say (``hevc.loop_filtered``)."""
    if codec != "hevc":
        raise FormatError(f"unknown luma codec '{codec}'")
    return hevc.loop_filtered(format.hevc_plane_tiles(payload, "luma"))
