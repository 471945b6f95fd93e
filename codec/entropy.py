"""Entropy coding of small signed integers with constriction's range coder. No torch.

The model of a residual r in [-radius, radius] is a two-sided geometric distribution,
p(r) ~ q**|r| with q = spread / (spread + 1), spread an integer 1..255. Its integer frequency
table is defined by spec 5.4.2 step by step (IEEE-754 double operations in a fixed order, no
exp/log, no library sums) and computed here in that order; constriction receives the table as
exact integers, so its own quantisation has nothing left to round. Both sides get the same
model on every machine, from the spec alone.
"""

from __future__ import annotations

import functools

import constriction
import numpy as np

from .errors import FormatError

MAX_SPREAD = 255
PRECISION = 24  # bits of the range coder's probabilities: frequencies add up to 2**PRECISION


def _pairwise_sum(values: list[float]) -> float:
    """The double-precision sum of ``values`` in the order of spec 5.4.2 step 3 (numpy's pairwise sum)."""
    count = len(values)
    if count < 8:
        total = 0.0
        for value in values:
            total += value
        return total
    if count <= 128:
        lanes = values[:8]
        end = count - count % 8
        for start in range(8, end, 8):
            lanes = [lane + value for lane, value in zip(lanes, values[start:start + 8])]
        total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        for value in values[end:]:
            total += value
        return total
    half = count // 2 - count // 2 % 8
    return _pairwise_sum(values[:half]) + _pairwise_sum(values[half:])


@functools.cache
def geometric_cdf(spread: int, radius: int) -> tuple[int, ...]:
    """Cumulative frequencies F_0..F_n of the residual model (spec 5.4.2), n = 2 * radius + 1.

    Symbol j (residual j - radius) has frequency F_(j+1) - F_j >= 1; F_0 = 0, F_n = 2**PRECISION.
    Python floats are IEEE-754 doubles rounded to nearest: the steps below are the spec's, operation for operation.
    """
    ratio = spread / (spread + 1)
    powers = [1.0]
    for _ in range(radius):
        powers.append(powers[-1] * ratio)
    weights = powers[:0:-1] + powers
    total = _pairwise_sum(weights)
    probabilities = [weight / total for weight in weights]
    normalization = 0.0
    for probability in probabilities:
        normalization += probability
    scale = ((1 << PRECISION) - len(weights)) / normalization
    cdf, cumulative = [], 0.0
    for index, probability in enumerate(probabilities):
        cdf.append(int(cumulative * scale) + index)
        cumulative += probability
    cdf.append(1 << PRECISION)
    return tuple(cdf)


@functools.cache
def _geometric_model(spread: int, radius: int) -> constriction.stream.model.Categorical:
    """The model of ``geometric_cdf`` as constriction's categorical model, with no rounding left.

    constriction's leaky quantisation (perfect=False) of weights m_0..m_(n-1) starts symbol j at
    floor((m_0 + ... + m_(j-1)) * (2**24 - n) / (m_0 + ... + m_(n-1))) + j. Given the integers
    m_j = F_(j+1) - F_j - 1, which add up to exactly 2**24 - n, every step is exact: symbol j
    starts at F_j. tests/test_entropy.py checks this against the coder.
    """
    frequencies = np.diff(np.array(geometric_cdf(spread, radius), dtype=np.int64))
    return constriction.stream.model.Categorical((frequencies - 1).astype(np.float64), perfect=False)


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
