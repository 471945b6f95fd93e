"""HEVC intra pictures through pillow-heif (x265 / libde265), stored without the HEIF container.

libheif only reads and writes HEIF files, whose boxes cost ~300 bytes a picture: a tenth of a
photo at 0.05 bpp. We keep the picture's NAL units alone (parameter sets + slice data). To decode,
we wrap them in the smallest HEIF file libheif accepts (ftyp, meta with one hvc1 item, mdat).

Pictures are 8-bit monochrome. A plane larger than ``TILE_SIDE`` on a side is coded as independent
tiles (x265 refuses extreme aspect ratios, and tiles bound time and memory).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pillow_heif
from construct import (
    Bytes,
    Const,
    ConstructError,
    GreedyBytes,
    GreedyRange,
    Int8ub,
    Int16ub,
    Int24ub,
    Int32ub,
    Prefixed,
    PrefixedArray,
    Struct,
    this,
)

from .errors import FormatError
from .format import NAL_TYPE_PPS, NAL_TYPE_VPS, TILE_SIDE, is_parameter_set, nal_unit_type

NAL_SPS = 33
PARAMETER_SET_TYPES = tuple(range(NAL_TYPE_VPS, NAL_TYPE_PPS + 1))

# x265 settings: intra, tuned for PSNR (libheif enables psycho-visual tuning and adaptive
# quantisation by default, which cost PSNR at equal rate).
X265_PARAMS = {"x265:psy-rd": "0", "x265:psy-rdoq": "0", "x265:aq-mode": "0"}
# Both in-loop filters off (deblocking and SAO; only together: x265 hangs with deblocking off and
# SAO on): for a stream whose decoder runs a network trained on unfiltered pictures. In intra
# coding the filters only shape the output (prediction reads unfiltered samples), so a network
# after them can replace them, and SAO's side information is saved.
X265_NO_LOOP_FILTERS = {"x265:sao": "0", "x265:deblock": "false"}


def _box(box_type: bytes, *fields) -> Prefixed:
    """An ISO-BMFF box: u32be size (including the 8-byte header), 4-char type, then ``fields``."""
    return Prefixed(Int32ub, Struct("type" / Const(box_type), *fields), includelength=True)


def _full_box(box_type: bytes, *fields) -> Prefixed:
    """An ISO-BMFF full box: a box whose body starts with version (u8) and flags (u24), all zero."""
    return _box(box_type, "version" / Const(0, Int8ub), "flags" / Const(0, Int24ub), *fields)


_NalArray = Struct(
    "nal_type" / Int8ub,  # array_completeness (1 bit), reserved 0 (1 bit), NAL unit type (6 bits)
    "nal_units" / PrefixedArray(Int16ub, Prefixed(Int16ub, GreedyBytes)),
)

# ISO/IEC 14496-15 HEVCDecoderConfigurationRecord
_HvcC = _box(
    b"hvcC",
    "configuration_version" / Const(1, Int8ub),
    "profile_tier_level" / Bytes(12),  # copied from the SPS: profile, compat flags, constraints, level
    "min_spatial_segmentation" / Const(0xF000, Int16ub),
    "parallelism_type" / Const(0xFC, Int8ub),
    "chroma_format" / Const(0xFC, Int8ub),  # 4:0:0 (monochrome)
    "bit_depth_luma" / Const(0xF8, Int8ub),  # 8 bits
    "bit_depth_chroma" / Const(0xF8, Int8ub),
    "avg_frame_rate" / Const(0, Int16ub),
    "layering" / Const(0x0F, Int8ub),  # 1 temporal layer, nested, 4-byte NAL lengths
    "arrays" / PrefixedArray(Int8ub, _NalArray),
)
_HVCC_FIXED_SIZE = 22  # bytes of the record before its NAL arrays
_HvcCArrays = PrefixedArray(Int8ub, _NalArray)

_MinimalHeif = Struct(
    "ftyp" / _box(b"ftyp", "brands" / Const(b"heic\x00\x00\x00\x00mif1heic")),
    "meta" / _full_box(
        b"meta",
        "hdlr" / _full_box(b"hdlr", "handler" / Const(b"\x00" * 4 + b"pict" + b"\x00" * 13)),
        "pitm" / _full_box(b"pitm", "item_id" / Const(1, Int16ub)),
        "iloc" / _full_box(
            b"iloc",
            "sizes" / Const(0x4400, Int16ub),  # 4-byte offsets and lengths, no base offset
            "item_count" / Const(1, Int16ub),
            "item_id" / Const(1, Int16ub),
            "data_reference_index" / Const(0, Int16ub),
            "extent_count" / Const(1, Int16ub),
            "extent_offset" / Int32ub,
            "extent_length" / Int32ub,
        ),
        "iinf" / _full_box(
            b"iinf",
            "entry_count" / Const(1, Int16ub),
            "infe" / _box(
                b"infe",
                "version" / Const(2, Int8ub),
                "flags" / Const(0, Int24ub),
                "item_id" / Const(1, Int16ub),
                "protection_index" / Const(0, Int16ub),
                "item_type" / Const(b"hvc1"),
                "item_name" / Const(b"\x00"),
            ),
        ),
        "iprp" / _box(
            b"iprp",
            "ipco" / _box(
                b"ipco",
                "hvcC" / _HvcC,
                "ispe" / _full_box(b"ispe", "width" / Int32ub, "height" / Int32ub),
            ),
            "ipma" / _full_box(
                b"ipma",
                "entry_count" / Const(1, Int32ub),
                "item_id" / Const(1, Int16ub),
                "associations" / Const(b"\x02\x81\x02"),  # hvcC (essential), ispe
            ),
        ),
    ),
    "mdat" / _box(b"mdat", "data" / GreedyBytes),
)

# What we read back from libheif's own files: a flat walk over boxes, descending into containers.
_AnyBox = Struct("size" / Int32ub, "type" / Bytes(4), "body" / Bytes(this.size - 8))
_CONTAINER_BOXES = {b"meta": 4, b"iprp": 0, b"ipco": 0}  # type -> bytes to skip (full-box header)
_LengthPrefixedNals = GreedyRange(Prefixed(Int32ub, GreedyBytes))


def _walk_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (type, body) for every box in ``data`` and in its container boxes, depth first."""
    for box in GreedyRange(_AnyBox).parse(data):
        yield box.type, box.body
        if box.type in _CONTAINER_BOXES:
            yield from _walk_boxes(box.body[_CONTAINER_BOXES[box.type]:])


def _rbsp(nal_unit: bytes) -> bytes:
    """The NAL unit's payload with emulation-prevention bytes (00 00 03 -> 00 00) removed."""
    return nal_unit.replace(b"\x00\x00\x03", b"\x00\x00")


class _BitReader:
    """Reads big-endian bit fields and unsigned Exp-Golomb codes (ue(v)) from RBSP bytes."""

    def __init__(self, data: bytes, byte_offset: int) -> None:
        self.bits = "".join(f"{byte:08b}" for byte in data)
        self.position = 8 * byte_offset

    def bit_field(self, count: int) -> int:
        if self.position + count > len(self.bits):
            raise FormatError("HEVC parameter set is truncated")
        value = int(self.bits[self.position:self.position + count] or "0", 2)
        self.position += count
        return value

    def exp_golomb(self) -> int:
        leading_zeros = 0
        while self.bit_field(1) == 0:
            leading_zeros += 1
            if leading_zeros > 31:
                raise FormatError("HEVC parameter set holds an invalid Exp-Golomb code")
        return (1 << leading_zeros) - 1 + self.bit_field(leading_zeros)


def _coded_size(sps: bytes) -> tuple[int, int]:
    """(width, height) of the picture an SPS describes, after its conformance window, in pixels.

    Reads an SPS with one temporal sub-layer (so profile_tier_level is 12 bytes), as x265 writes
    for still pictures, of a monochrome or 4:4:4 picture (crop units of one pixel).
    """
    reader = _BitReader(_rbsp(sps), byte_offset=15)
    reader.exp_golomb()  # sps_seq_parameter_set_id
    if reader.exp_golomb() == 3:  # chroma_format_idc
        reader.bit_field(1)  # separate_colour_plane_flag
    width, height = reader.exp_golomb(), reader.exp_golomb()
    if reader.bit_field(1):  # conformance_window_flag
        left, right, top, bottom = (reader.exp_golomb() for _ in range(4))
        width, height = width - left - right, height - top - bottom
    return width, height


def _deblocking_disabled(pps: bytes) -> bool:
    """Whether a PPS turns HEVC's deblocking filter off for every slice: pps_deblocking_filter_disabled_flag
    set and deblocking_filter_override_enabled_flag clear (H.265 7.3.2.3.1); signed Exp-Golomb
    fields are skipped as unsigned ones (same length)."""
    reader = _BitReader(_rbsp(pps), byte_offset=2)  # after the 2-byte NAL unit header
    reader.exp_golomb()  # pps_pic_parameter_set_id
    reader.exp_golomb()  # pps_seq_parameter_set_id
    reader.bit_field(7)  # dependent slices, output flag, 3 extra slice header bits, sign hiding, cabac init
    for _ in range(3):  # num_ref_idx_l0/l1_default_active_minus1, init_qp_minus26
        reader.exp_golomb()
    reader.bit_field(2)  # constrained_intra_pred_flag, transform_skip_enabled_flag
    if reader.bit_field(1):  # cu_qp_delta_enabled_flag
        reader.exp_golomb()  # diff_cu_qp_delta_depth
    reader.exp_golomb()  # pps_cb_qp_offset
    reader.exp_golomb()  # pps_cr_qp_offset
    reader.bit_field(4)  # slice chroma qp offsets, weighted pred, weighted bipred, transquant bypass
    tiles = reader.bit_field(1)  # tiles_enabled_flag
    reader.bit_field(1)  # entropy_coding_sync_enabled_flag
    if tiles:
        columns, rows = reader.exp_golomb() + 1, reader.exp_golomb() + 1
        if columns > 20 or rows > 22:  # HEVC's most, at any level (table A.8)
            raise FormatError("HEVC PPS holds more tile columns or rows than HEVC allows")
        if not reader.bit_field(1):  # uniform_spacing_flag
            for _ in range(columns + rows - 2):
                reader.exp_golomb()
        reader.bit_field(1)  # loop_filter_across_tiles_enabled_flag
    reader.bit_field(1)  # pps_loop_filter_across_slices_enabled_flag
    if not reader.bit_field(1):  # deblocking_filter_control_present_flag
        return False
    override = reader.bit_field(1)  # deblocking_filter_override_enabled_flag: a slice may turn it back on
    return bool(reader.bit_field(1)) and not override  # pps_deblocking_filter_disabled_flag


def loop_filtered(tiles: list[list[bytes]]) -> bool:
    """Whether a plane's pictures (per-tile NAL units, as from ``encode_plane``) were coded with
    HEVC's loop filters: False only if every tile has a PPS and every PPS turns deblocking off
    (``_deblocking_disabled``; x265 turns SAO off with it, ``X265_NO_LOOP_FILTERS``, and SAO is
    not looked at)."""
    def unfiltered(nal_units: list[bytes]) -> bool:
        pps_units = [nal_unit for nal_unit in nal_units if nal_unit_type(nal_unit) == NAL_TYPE_PPS]
        return bool(pps_units) and all(map(_deblocking_disabled, pps_units))

    return not tiles or not all(map(unfiltered, tiles))


def nal_units_of_heif(heif_bytes: bytes) -> list[bytes]:
    """The NAL units of a single-image HEIF file from libheif: parameter sets, then slices."""
    boxes = dict(_walk_boxes(heif_bytes))
    arrays = _HvcCArrays.parse(boxes[b"hvcC"][_HVCC_FIXED_SIZE:])
    nal_units = [bytes(n) for array in arrays for n in array.nal_units]
    nal_units += [bytes(n) for n in _LengthPrefixedNals.parse(boxes[b"mdat"])]
    return nal_units


def encode_picture(plane: np.ndarray, quality: int, loop_filters: bool = True) -> list[bytes]:
    """Code one picture as HEVC intra.

    plane: (H, W) uint8, each side at most ``TILE_SIDE``.
    quality: x265 quality 0..100 (libheif maps it to CRF = (100 - quality) / 2).
    loop_filters: False codes the picture with HEVC's deblocking and SAO off (``X265_NO_LOOP_FILTERS``).
    Returns the NAL units (VPS, SPS, PPS, slice segments), without start codes or length fields.
    """
    height, width = plane.shape
    heif = pillow_heif.from_bytes(mode="L", size=(width, height), data=np.ascontiguousarray(plane).tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=int(quality), enc_params=X265_PARAMS if loop_filters else
              {**X265_PARAMS, **X265_NO_LOOP_FILTERS})
    return nal_units_of_heif(buffer.getvalue())


def _minimal_heif(nal_units: list[bytes], width: int, height: int) -> bytes:
    """A HEIF file holding the picture; its ``ispe`` is the SPS's size, which libheif checks.

    x265 (through libheif) codes a picture padded to at least 64x64: the plane is its top-left
    (height, width) corner.
    """
    parameter_sets = [n for n in nal_units if is_parameter_set(n)]
    slices = [n for n in nal_units if not is_parameter_set(n)]
    sps = [n for n in parameter_sets if nal_unit_type(n) == NAL_SPS]
    if len(sps) != 1 or len(_rbsp(sps[0])) < 16 or not slices:
        raise FormatError("HEVC picture: needs exactly one SPS and at least one slice")
    coded_width, coded_height = _coded_size(sps[0])
    if not (width <= coded_width <= width + 2 * TILE_SIDE and height <= coded_height <= height + 2 * TILE_SIDE):
        raise FormatError(f"HEVC picture is {coded_width}x{coded_height}, expected {width}x{height}")
    arrays = [
        {"nal_type": 0x80 | nal_type, "nal_units": [n for n in parameter_sets if nal_unit_type(n) == nal_type]}
        for nal_type in PARAMETER_SET_TYPES
        if any(nal_unit_type(n) == nal_type for n in parameter_sets)
    ]
    mdat = _LengthPrefixedNals.build(slices)
    fields = {
        "ftyp": {}, "mdat": {"data": mdat},
        "meta": {"hdlr": {}, "pitm": {}, "iinf": {"infe": {}},
                 "iloc": {"extent_offset": 0, "extent_length": len(mdat)},
                 "iprp": {"ipco": {"hvcC": {"profile_tier_level": _rbsp(sps[0])[3:15], "arrays": arrays},
                                   "ispe": {"width": coded_width, "height": coded_height}},
                          "ipma": {}}},
    }
    # The item's data starts right after the mdat header, at the end of everything else.
    fields["meta"]["iloc"]["extent_offset"] = len(_MinimalHeif.build(fields)) - len(mdat)
    return _MinimalHeif.build(fields)


def decode_picture(nal_units: list[bytes], width: int, height: int) -> np.ndarray:
    """Decode NAL units from ``encode_picture`` into a (height, width) uint8 plane."""
    try:
        heif_bytes = _minimal_heif(nal_units, width, height)
        image = pillow_heif.open_heif(io.BytesIO(heif_bytes), convert_hdr_to_8bit=False)
        plane = np.asarray(image.to_pillow().convert("L"))
    except (ValueError, RuntimeError, OSError, ConstructError) as error:
        raise FormatError(f"HEVC picture does not decode: {str(error).splitlines()[0]}") from None
    return np.ascontiguousarray(plane[:height, :width])


def tile_grid(height: int, width: int) -> list[tuple[slice, slice]]:
    """The tiles of a (height, width) plane, in raster order: (rows, cols) slices of TILE_SIDE."""
    return [
        (slice(top, min(top + TILE_SIDE, height)), slice(left, min(left + TILE_SIDE, width)))
        for top in range(0, height, TILE_SIDE)
        for left in range(0, width, TILE_SIDE)
    ]


def encode_plane(plane: np.ndarray, quality: int, loop_filters: bool = True) -> list[list[bytes]]:
    """Code a (H, W) uint8 plane of any size as independent HEVC tiles; one NAL list per tile
    (``loop_filters``: as for ``encode_picture``)."""
    return [encode_picture(plane[rows, cols], quality, loop_filters) for rows, cols in tile_grid(*plane.shape)]


def decode_plane(tiles: list[list[bytes]], height: int, width: int) -> np.ndarray:
    """Rebuild a (height, width) uint8 plane from the tiles of ``encode_plane``."""
    grid = tile_grid(height, width)
    if len(tiles) != len(grid):
        raise FormatError(f"HEVC plane has {len(tiles)} tiles, a {width}x{height} plane needs {len(grid)}")
    plane = np.empty((height, width), np.uint8)
    for (rows, cols), nal_units in zip(grid, tiles):
        plane[rows, cols] = decode_picture(nal_units, cols.stop - cols.start, rows.stop - rows.start)
    return plane
