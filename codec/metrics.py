"""Image quality metrics: PSNR and MS-SSIM, on uint8 images."""

from __future__ import annotations

import numpy as np

MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap window need more than (11 - 1) * 2**4 pixels


ROWS_PER_CHUNK = 256  # rows handled at once: bounds temporary memory on large images


def squared_error(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Sum over all samples of (reference - decoded)**2, for arrays of one shape, in row chunks."""
    total = 0.0
    for top in range(0, reference.shape[0], ROWS_PER_CHUNK):
        rows = slice(top, top + ROWS_PER_CHUNK)
        total += float(np.sum((reference[rows].astype(np.float64) - decoded[rows]) ** 2))
    return total


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR in dB (peak 255) over all samples of two arrays of one shape; inf when identical."""
    mse = squared_error(reference, decoded) / reference.size
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ms_ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """MS-SSIM (0..1) of two (H, W, 3) or (H, W) uint8 images; nan when a side is under 161 px."""
    if min(reference.shape[:2]) < MS_SSIM_MIN_SIDE:
        return float("nan")
    import torch
    from pytorch_msssim import ms_ssim as pytorch_ms_ssim

    def as_tensor(pixels: np.ndarray) -> torch.Tensor:
        planes = pixels[..., None] if pixels.ndim == 2 else pixels
        return torch.from_numpy(np.array(planes, dtype=np.float64)).permute(2, 0, 1)[None]

    return float(pytorch_ms_ssim(as_tensor(reference), as_tensor(decoded), data_range=255.0))


def gradient_energy(plane: np.ndarray) -> float:
    """Mean squared horizontal and vertical difference of neighbouring samples of a (H, W) plane:
    how much fine detail and texture it holds (a decoded/original ratio under 1 means blur)."""
    values = plane.astype(np.float64)
    horizontal, vertical = np.diff(values, axis=1), np.diff(values, axis=0)
    return float((np.sum(horizontal**2) + np.sum(vertical**2)) / max(horizontal.size + vertical.size, 1))


def grid_strength(reference: np.ndarray, decoded: np.ndarray, period: int, lines: bool = False) -> float:
    """How strongly a (H, W) decoded plane carries an error pattern repeating every ``period``
    samples in both directions (the grid a sub-pixel convolution can leave), in 8-bit levels: the
    RMS over the period x period phases of each phase's mean error, about the mean of all phases.
    lines: instead, the phases along each row and each column separately, the RMS over the rows'
    and the columns' (each half): this also sees a pattern repeating along the rows whose strength
    or sign changes from row to row (dots along an edge), which cancels out in the plane's means.
    Each of those means averages one line only, so random error adds a floor (white noise of RMS s
    along lines of L samples: about s * sqrt(period / L)); compare planes of one size, or with the
    same measure at another period as a control."""
    error = decoded.astype(np.float64) - reference.astype(np.float64)
    height, width = error.shape[0] // period * period, error.shape[1] // period * period
    if not height or not width:
        raise ValueError(f"a {error.shape} plane holds no whole {period}x{period} period")
    if lines:
        deviations = [phases - phases.mean(axis=1, keepdims=True) for phases in (
            error[:, :width].reshape(error.shape[0], width // period, period).mean(axis=1),  # (H, period)
            error[:height].T.reshape(error.shape[1], height // period, period).mean(axis=1))]  # (W, period)
        return float(np.sqrt(np.mean([np.mean(deviation**2) for deviation in deviations])))
    phases = error[:height, :width].reshape(height // period, period, width // period, period).mean(axis=(0, 2))
    return float(np.sqrt(np.mean((phases - phases.mean()) ** 2)))
