"""The container: round trip and refusal of every kind of bad file with the codec's own errors."""

from __future__ import annotations

import zlib

import pytest

import codec
from codec import format
from codec.errors import FormatError, LimitError, ModelMismatchError


def _container(**changes) -> format.Container:
    fields = dict(width=768, height=512, model_version=codec.weights.model_version(), luma_scale=2,
                  luma_codec="hevc", hint_layout="grid", sections={"luma": b"L" * 300, "hints": b"HH"})
    fields.update(changes)
    return format.Container(**fields)


def test_round_trip_keeps_every_field():
    parsed = format.parse_container(format.build_container(_container()))
    assert (parsed.width, parsed.height, parsed.luma_scale, parsed.luma_codec, parsed.hint_layout) == (
        768, 512, 2, "hevc", "grid")
    assert parsed.sections == {"luma": b"L" * 300, "hints": b"HH"}


def test_the_deblock_level_is_in_headers_from_format_1_0_on():
    data = format.build_container(_container(deblock_level=137, format_version=(1, 1)))
    assert format.parse_container(data).deblock_level == 137
    old = format.build_container(_container(deblock_level=None, format_version=(0, 4)))  # as nnc 0.6 wrote it
    assert len(old) == len(data) - 1 and old[3] == 0x04
    parsed = format.parse_container(old)
    assert parsed.deblock_level is None and parsed.sections == {"luma": b"L" * 300, "hints": b"HH"}
    assert format.build_container(parsed) == old  # written back as it was: its stage 4 keeps its meaning
    assert codec.info(old)["deblock_level"] is None and codec.info(data)["deblock_level"] == 137
    with pytest.raises(ValueError, match="deblock level"):
        format.build_container(_container(deblock_level=None))


def test_header_is_small():
    data = format.build_container(_container(sections={}))
    assert len(data) == 3 + 1 + 4 + 2 + 2 + 1 + 1 + 1  # magic, version, model, width, height, coding, deblock
                                                       # level, color strength


def test_the_color_strength_is_in_headers_from_format_2_0_on_where_stage_3_runs_its_network():
    """One byte (Cb, Cr nibbles) in files with hints and the classical_color bit clear; none in
    grayscale or classical files (no network runs), nor in files of format 1.x (full strength)."""
    data = format.build_container(_container(color_strength=(3, 12)))
    assert data[14] == 0x3C and format.parse_container(data).color_strength == (3, 12)
    assert codec.info(data)["color_strength"] == (3, 12)
    for changes, shown in (({"classical_color": True}, None), ({"format_version": (1, 1)}, (8, 8)),
                           ({"hint_layout": "none", "sections": {"luma": b"L" * 300}}, None)):
        without = format.build_container(_container(color_strength=(3, 12), **changes))
        parsed = format.parse_container(without)
        assert len(without) == len(data) - 1 - ("sections" in changes) * 8  # no byte (nor, gray, the hints)
        assert parsed.color_strength == (8, 8) and codec.info(without)["color_strength"] == shown
        assert format.build_container(parsed) == without
    with pytest.raises(ValueError, match="not in 0..15"):
        format.build_container(_container(color_strength=(16, 8)))


@pytest.mark.parametrize("cut", [1, 5, 12, 13, 14, 20, 200, 319])
def test_truncated_file_is_refused(cut):
    data = format.build_container(_container())
    with pytest.raises(FormatError):
        format.parse_container(data[:cut])


@pytest.mark.parametrize("offset", [4, 8, 10, 12, 14, 100])
def test_flipped_bit_in_header_or_payload_fails_the_crc(offset):
    data = bytearray(format.build_container(_container()))
    data[offset] ^= 0x01
    with pytest.raises(FormatError):
        format.parse_container(bytes(data))


def test_bad_magic():
    with pytest.raises(FormatError, match="magic"):
        format.parse_container(b"PNG" + format.build_container(_container())[3:])


def test_newer_major_version_is_refused():
    data = bytearray(format.build_container(_container()))
    data[3] = (format.FORMAT_VERSION_MAJOR + 1) << 4
    with pytest.raises(FormatError, match="newer"):
        format.parse_container(bytes(data))


def test_oversized_image_is_refused_before_decoding():
    data = format.build_container(_container(width=100_000, height=100_000))
    with pytest.raises(LimitError, match="limit"):
        format.parse_container(data)
    assert format.parse_container(data, max_pixels=10**10).width == 100_000


def test_section_claiming_more_than_the_file_is_refused():
    header = format.build_container(_container(sections={}))
    huge = header + bytes([1]) + format.VarInt.build(2**40) + b"\x00" * 10
    with pytest.raises(FormatError, match="truncated"):
        format.parse_container(huge)


def test_unknown_section_is_skipped():
    data = format.build_container(_container())
    payload = b"future"
    prefix = bytes([9, len(payload)])
    unknown = prefix + zlib.crc32(payload, zlib.crc32(prefix)).to_bytes(4, "big") + payload
    assert format.parse_container(data + unknown).sections == format.parse_container(data).sections


def test_reserved_luma_codec_is_refused_by_the_decoder():
    data = format.build_container(_container(luma_codec=7))
    with pytest.raises(FormatError, match="luma codec"):
        codec.decode(data)


def test_info_refuses_an_unknown_luma_codec_as_decode_does():
    data = format.build_container(_container(luma_codec=7))
    with pytest.raises(FormatError, match="unknown luma codec 7") as from_info:
        codec.info(data)
    with pytest.raises(FormatError) as from_decode:
        codec.decode(data)
    assert str(from_info.value) == str(from_decode.value)


def _file_with_sections(tags: list[str]) -> bytes:
    """A file whose sections (payload: the tag's name) come in the order of ``tags``, CRCs correct."""
    data = unprotected = format.build_container(_container(sections={}))
    for tag in tags:
        payload = tag.encode()
        prefix = bytes([format.SECTION_TAGS[tag], len(payload)])
        data += prefix + zlib.crc32(payload, zlib.crc32(unprotected + prefix)).to_bytes(4, "big") + payload
        unprotected = b""
    return data


@pytest.mark.parametrize("tags", [["hints", "luma"], ["luma", "metadata", "hints"], ["metadata", "luma"]])
@pytest.mark.parametrize("partial", [False, True])
def test_sections_out_of_order_are_refused(tags, partial):
    assert list(format.parse_container(_file_with_sections(sorted(tags, key=format.SECTION_TAGS.get))).sections) == [
        tag for tag in format.SECTION_TAGS if tag in tags]
    with pytest.raises(FormatError, match="order luma, hints, metadata"):
        format.parse_container(_file_with_sections(tags), partial=partial)


def test_a_grayscale_file_with_a_hints_section_is_refused():
    """Spec 4: a file of hint layout none has no hints section (a decoder would otherwise ignore bytes it paid for)."""
    assert format.parse_container(format.build_container(_container(hint_layout="none", sections={"luma": b"L"})))
    with pytest.raises(FormatError, match="grayscale file .* has a hints section"):
        format.parse_container(format.build_container(_container(hint_layout="none")))


def test_wrong_model_version_is_refused():
    data = format.build_container(_container(model_version=b"\x01\x02\x03\x04"))
    with pytest.raises(ModelMismatchError, match="01020304"):
        codec.decode(data)


def test_parameter_sets_that_inflate_too_far_are_refused():
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = deflate.compress(b"\x00" * 100_000) + deflate.flush()
    payload = format.HevcPlane.build({"tiles": [{"parameter_sets": bomb, "slices": [b"\x28\x01"]}]})
    with pytest.raises(FormatError, match="too long"):
        format.hevc_plane_tiles(payload, "luma")


def test_hevc_plane_round_trip_keeps_nal_units():
    tiles = [[b"\x40\x01vps", b"\x42\x01sps", b"\x44\x01pps", b"\x28\x01slice", b"\x02\x01more"]]
    assert format.hevc_plane_tiles(format.build_hevc_plane(tiles), "luma") == tiles


def test_a_grayscale_file_with_the_classical_color_bit_is_refused():
    data = format.build_container(_container(hint_layout="none", classical_color=True,
                                             sections={"luma": b"\x00"}))
    with pytest.raises(codec.FormatError, match="classical_color"):
        format.parse_container(data)


def test_a_varint_longer_than_the_spec_allows_is_refused():
    data = format.build_container(_container())
    width_at = len(format.MAGIC) + 1 + 4
    assert data[width_at:width_at + 2] == bytes([0x80, 0x06])  # 768
    padded = bytes([0x80, 0x86, *[0x80] * 8, 0x00])  # 768 in 11 bytes, high groups zero
    with pytest.raises(FormatError, match="field 'width': a varint longer than 10 bytes"):
        format.parse_header(data[:width_at] + padded + data[width_at + 2:])
    assert format.parse_header(data[:width_at] + padded[:9] + bytes([0x00]) + data[width_at + 2:])[0].width == 768
