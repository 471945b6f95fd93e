"""Entropy coding of small signed integers with constriction's range coder. No torch.

The model of a residual r in [-radius, radius] is a two-sided geometric distribution,
p(r) ~ q**|r| with q = spread / (spread + 1), spread an integer 1..255. Its table is built with
IEEE multiplications and divisions only (no exp/log, whose last bits vary across libm builds),
and constriction quantises it in integer arithmetic: both sides get the same model everywhere.
"""

from __future__ import annotations

import constriction
import numpy as np

from .errors import FormatError

MAX_SPREAD = 255


def _geometric_model(spread: int, radius: int) -> constriction.stream.model.Categorical:
    ratio = spread / (spread + 1)
    weights = [1.0]
    for _ in range(radius):
        weights.append(weights[-1] * ratio)
    table = np.array(weights[:0:-1] + weights, dtype=np.float64)
    return constriction.stream.model.Categorical(table / table.sum(), perfect=False)


def _ideal_bits(residuals: np.ndarray, spread: int) -> float:
    return _ideal_bits_of_sums(float(np.sum(np.abs(residuals))), len(residuals), spread)


def _ideal_bits_of_sums(magnitude_sum: float, count: int, spread: int) -> float:
    """Bits of ``count`` residuals whose magnitudes add up to ``magnitude_sum``, under ``spread``."""
    ratio = spread / (spread + 1)
    return float(-magnitude_sum * np.log2(ratio) + count * np.log2((1 + ratio) / (1 - ratio)))


def best_spread(residuals: np.ndarray) -> int:
    """The spread (1..255) under which ``residuals`` cost the fewest bits (a geometric fit)."""
    magnitude_sum, count = float(np.sum(np.abs(residuals))), len(residuals)
    return min(range(1, MAX_SPREAD + 1), key=lambda spread: _ideal_bits_of_sums(magnitude_sum, count, spread))


def encode_residuals(streams: list[tuple[np.ndarray, int]], radius: int) -> bytes:
    """Range-code residual arrays, each (n,) int in [-radius, radius] with its spread, in order.

    Returns the coder's 32-bit words as little-endian bytes, trailing zero bytes dropped.
    """
    encoder = constriction.stream.queue.RangeEncoder()
    for residuals, spread in streams:
        if len(residuals):
            symbols = (np.asarray(residuals, dtype=np.int64) + radius).astype(np.int32)
            encoder.encode(symbols, _geometric_model(spread, radius))
    return encoder.get_compressed().astype("<u4").tobytes().rstrip(b"\x00")


def decode_residuals(coded: bytes, counts_and_spreads: list[tuple[int, int]], radius: int) -> list[np.ndarray]:
    """Inverse of ``encode_residuals``: one (n,) int64 array per (n, spread), in order."""
    padded = coded + b"\x00" * (-len(coded) % 4)
    try:
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))
        return [
            decoder.decode(_geometric_model(spread, radius), count).astype(np.int64) - radius if count else
            np.zeros(0, np.int64)
            for count, spread in counts_and_spreads
        ]
    except (ValueError, RuntimeError, AssertionError) as error:
        raise FormatError(f"hint stream does not decode: {error}") from None
