"""Bjontegaard delta rate: piecewise cubic (PCHIP) interpolation of log-rate over the shared quality range."""

from __future__ import annotations

import numpy as np


def _pchip_integral(x: np.ndarray, y: np.ndarray, low: float, high: float, samples: int = 2000) -> float:
    """Integral over [low, high] of the monotone piecewise cubic (Fritsch-Carlson) through (x, y)."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    h = np.diff(x)
    delta = np.diff(y) / h
    slopes = np.zeros_like(x)
    for k in range(1, len(x) - 1):
        if delta[k - 1] * delta[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            slopes[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    slopes[0], slopes[-1] = delta[0], delta[-1]
    grid = np.linspace(low, high, samples)
    index = np.clip(np.searchsorted(x, grid) - 1, 0, len(x) - 2)
    t = (grid - x[index]) / h[index]
    values = ((2 * t**3 - 3 * t**2 + 1) * y[index] + (t**3 - 2 * t**2 + t) * h[index] * slopes[index]
              + (-2 * t**3 + 3 * t**2) * y[index + 1] + (t**3 - t**2) * h[index] * slopes[index + 1])
    return float(np.trapezoid(values, grid))


def bd_rate(rate_a, quality_a, rate_b, quality_b) -> float:
    """Average rate difference of B against A in percent at equal quality (negative: B needs fewer bits)."""
    log_a, log_b = np.log(np.asarray(rate_a, float)), np.log(np.asarray(rate_b, float))
    qa, qb = np.asarray(quality_a, float), np.asarray(quality_b, float)
    low, high = max(qa.min(), qb.min()), min(qa.max(), qb.max())
    if high <= low:
        return float("nan")
    mean_difference = (_pchip_integral(qb, log_b, low, high) - _pchip_integral(qa, log_a, low, high)) / (high - low)
    return float((np.exp(mean_difference) - 1) * 100)


def psnr_at_rate(rates, qualities, rate: float) -> float:
    """Quality at ``rate`` by linear interpolation in log-rate (nan outside the measured range)."""
    rates, qualities = np.asarray(rates, float), np.asarray(qualities, float)
    order = np.argsort(rates)
    if not rates.min() <= rate <= rates.max():
        return float("nan")
    return float(np.interp(np.log(rate), np.log(rates[order]), qualities[order]))
