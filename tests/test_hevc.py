"""HEVC pictures without the HEIF container decode exactly as libheif decodes its own files."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from codec import format, hevc
from codec.errors import FormatError


@pytest.mark.parametrize("loop_filters", [True, False])
@pytest.mark.parametrize("height, width", [(1, 1), (5, 3), (9, 17), (64, 64), (70, 130)])
def test_decode_matches_libheif_on_its_own_file(height, width, loop_filters):
    plane = np.random.default_rng(height * width).integers(0, 256, (height, width), dtype=np.uint8)
    nal_units = hevc.encode_picture(plane, 40, loop_filters)
    buffer = io.BytesIO()
    settings = hevc.X265_PARAMS if loop_filters else {**hevc.X265_PARAMS, **hevc.X265_NO_LOOP_FILTERS}
    pillow_heif.from_pillow(Image.fromarray(plane)).save(buffer, quality=40, enc_params=settings)
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


def _wavy_plane(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).normal(0, 6, (height, width))
    return np.clip(128 + 60 * np.sin(x / 13) * np.cos(y / 9) + noise, 0, 255).astype(np.uint8)


def test_without_loop_filters_the_block_edges_stay_in_the_decoded_picture():
    plane = _wavy_plane(128, 192)

    def edge_ratio(loop_filters: bool) -> float:  # steps across the 8-pixel grid over steps inside it
        steps = np.abs(np.diff(hevc.decode_plane(hevc.encode_plane(plane, 5, loop_filters), 128, 192)
                               .astype(float), axis=1))
        return steps[:, 7::8].mean() / np.delete(steps, np.s_[7::8], axis=1).mean()

    assert edge_ratio(False) > 1.5 * edge_ratio(True)


@pytest.mark.parametrize("height, width", [(63, 64), (128, 192), (192, 128), (256, 384), (512, 768)])
@pytest.mark.parametrize("loop_filters", [True, False])
def test_parameter_sets_of_common_sizes_cost_a_few_bytes_with_or_without_loop_filters(height, width, loop_filters):
    nal_units = hevc.encode_picture(_wavy_plane(height, width), 20, loop_filters)
    slices = [unit for unit in nal_units if not format.is_parameter_set(unit)]
    stored = format.build_hevc_plane([nal_units])
    assert len(stored) - len(format.build_hevc_plane([slices])) <= 3  # the dictionary of spec 5.3 holds them
    assert format.hevc_plane_tiles(stored, "luma") == [nal_units]


def test_the_dictionary_ends_with_format_1_0s_so_older_files_inflate_unchanged():
    """The digest of format 1.0's 1,009-byte dictionary (nnc 0.7 to 0.10)."""
    assert hashlib.sha256(format.PARAMETER_SET_DICTIONARY[-1009:]).hexdigest() == (
        "31720b4b8a96eb3b0a00dc52d265fa376d43c13f86444d435f137480cdb39506")


@pytest.mark.parametrize("quality", [0, 30, 100])
def test_the_parameter_sets_say_whether_a_plane_was_coded_with_loop_filters(quality):
    """Stage 4 picks its network by this (spec 6), so it must hold at every quality and tile count."""
    plane = _wavy_plane(40, hevc.TILE_SIDE + 30)  # two tiles
    for loop_filters in (True, False):
        tiles = hevc.encode_plane(plane, quality, loop_filters)
        assert len(tiles) == 2 and hevc.loop_filtered(tiles) is loop_filters
    mixed = [hevc.encode_plane(plane, quality, True)[0], hevc.encode_plane(plane, quality, False)[1]]
    assert hevc.loop_filtered(mixed)  # filtered unless every tile is unfiltered


def test_a_truncated_pps_is_a_format_error():
    pps = next(unit for unit in hevc.encode_picture(np.zeros((8, 8), np.uint8), 50, False)
               if format.nal_unit_type(unit) == format.NAL_TYPE_PPS)
    with pytest.raises(FormatError, match="truncated"):
        hevc.loop_filtered([[pps[:3]]])


def test_a_tile_without_a_pps_or_with_slices_free_to_filter_reads_as_filtered():
    unfiltered = hevc.encode_picture(_wavy_plane(16, 16), 50, False)
    assert not hevc.loop_filtered([unfiltered])
    without_pps = [unit for unit in unfiltered if format.nal_unit_type(unit) != format.NAL_TYPE_PPS]
    assert hevc.loop_filtered([unfiltered, without_pps]) and hevc.loop_filtered([])
    pps = next(unit for unit in unfiltered if format.nal_unit_type(unit) == format.NAL_TYPE_PPS)
    assert pps.hex().endswith("a480")  # deblocking control present 1, override 0, disabled 1, ..., stop bit
    overridable = pps[:-2] + bytes([0xe4, 0x80])  # override 1: a slice may turn deblocking back on
    assert hevc.loop_filtered([[overridable if unit == pps else unit for unit in unfiltered]])
