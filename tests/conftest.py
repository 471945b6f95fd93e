"""Shared fixtures: synthetic images (no data outside the repo) and the shipped sample photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE_PHOTO = Path(__file__).parents[1] / "samples" / "kodim23.png"


def synthetic_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8: colour gradients, a disc and mild noise, like a small photo."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    red = 255 * xs / max(width - 1, 1)
    green = 255 * ys / max(height - 1, 1)
    blue = np.where((ys - height / 2) ** 2 + (xs - width / 3) ** 2 < (min(height, width) / 3) ** 2, 200, 40)
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


@pytest.fixture
def rgb_image() -> Image.Image:
    return Image.fromarray(synthetic_rgb(40, 56))


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A 256x192 crop of the shipped Kodak sample: real photo statistics, fast to code."""
    with Image.open(SAMPLE_PHOTO) as image:
        return image.convert("RGB").crop((300, 100, 556, 292))
