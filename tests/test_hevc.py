"""HEVC pictures without the HEIF container decode exactly as libheif decodes its own files."""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from codec import hevc
from codec.errors import FormatError


@pytest.mark.parametrize("height, width", [(1, 1), (5, 3), (9, 17), (64, 64), (70, 130)])
def test_decode_matches_libheif_on_its_own_file(height, width):
    plane = np.random.default_rng(height * width).integers(0, 256, (height, width), dtype=np.uint8)
    nal_units = hevc.encode_picture(plane, 40)
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(plane)).save(buffer, quality=40, enc_params=hevc.X265_PARAMS)
    reference = np.asarray(pillow_heif.open_heif(io.BytesIO(buffer.getvalue())).to_pillow().convert("L"))
    decoded = hevc.decode_picture(nal_units, width, height)
    assert np.array_equal(decoded, reference)
    assert sum(map(len, nal_units)) < len(buffer.getvalue()) - 250  # the container's bytes are saved


def test_wide_plane_is_tiled_and_rebuilt():
    plane = np.tile(np.arange(256, dtype=np.uint8), (8, 9))[:, : hevc.TILE_SIDE + 100]
    tiles = hevc.encode_plane(plane, 90)
    assert len(tiles) == 2
    decoded = hevc.decode_plane(tiles, *plane.shape)
    assert np.abs(decoded.astype(int) - plane).mean() < 3


def test_wrong_tile_count_and_garbage_are_format_errors():
    tiles = hevc.encode_plane(np.zeros((8, 8), np.uint8), 50)
    with pytest.raises(FormatError):
        hevc.decode_plane(tiles * 2, 8, 8)
    with pytest.raises(FormatError):
        hevc.decode_picture([b"\x42\x01garbage", b"\x28\x01junk"], 8, 8)
    with pytest.raises(FormatError):
        hevc.decode_picture(tiles[0], 200, 200)
