"""Image quality metrics and Bjontegaard deltas for the benchmark."""

from __future__ import annotations

import numpy as np

from codec.color import rgb_to_ycbcr
from codec.metrics import ms_ssim, psnr


def quality_metrics(reference: np.ndarray, decoded: np.ndarray) -> dict:
    """psnr_rgb, psnr_y (BT.601 luma) and ms_ssim (RGB, linear 0..1; nan below 161 px) of (H, W, 3) uint8."""
    return {"psnr_rgb": psnr(reference, decoded),
            "psnr_y": psnr(rgb_to_ycbcr(reference)[0], rgb_to_ycbcr(decoded)[0]),
            "ms_ssim": ms_ssim(reference, decoded)}


def ms_ssim_db(value: float) -> float:
    """MS-SSIM as -10 log10(1 - MS-SSIM): the usual dB scale for averaging and BD-rates."""
    return float(-10 * np.log10(max(1.0 - value, 1e-10)))


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


def bd_rate(rate_anchor, quality_anchor, rate_test, quality_test) -> float:
    """Bjontegaard delta rate in percent of the test curve against the anchor (negative: fewer bits).

    Log-rate is interpolated as a monotone piecewise cubic of quality over the qualities both curves
    reach; nan where they share no range (or a curve has fewer than 2 points)."""
    curves = []
    for rates, qualities in ((rate_anchor, quality_anchor), (rate_test, quality_test)):
        rates, qualities = np.asarray(rates, float), np.asarray(qualities, float)
        keep = np.isfinite(rates) & np.isfinite(qualities) & (rates > 0)
        _, unique = np.unique(qualities[keep], return_index=True)
        curves.append((np.log(rates[keep][unique]), qualities[keep][unique]))
    if min(len(q) for _, q in curves) < 2:
        return float("nan")
    low = max(q.min() for _, q in curves)
    high = min(q.max() for _, q in curves)
    if high <= low:
        return float("nan")
    (log_a, qa), (log_t, qt) = curves
    mean_difference = (_pchip_integral(qt, log_t, low, high) - _pchip_integral(qa, log_a, low, high)) / (high - low)
    return float((np.exp(mean_difference) - 1) * 100)


def quality_at_rate(rates, qualities, rate: float) -> float:
    """Quality at ``rate`` by linear interpolation in log-rate; nan outside the measured range."""
    rates, qualities = np.asarray(rates, float), np.asarray(qualities, float)
    order = np.argsort(rates)
    if not rates.min() <= rate <= rates.max():
        return float("nan")
    return float(np.interp(np.log(rate), np.log(rates[order]), qualities[order]))
