"""format_spec.md and codec/format.py must describe the same bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from construct import SizeofError

from codec import format

SPEC = (Path(__file__).parents[1] / "format_spec.md").read_text(encoding="utf-8")
TYPE_SIZES = {"u8": 1, "u32be": 4}


def code_block_after(heading: str) -> str:
    """The first fenced code block after ``heading``."""
    return SPEC.split(heading, 1)[1].split("```", 2)[1]
STRUCTS = {"3.1 Header": format.Header, "3.2 Section": format.Section, "5.1 HevcPlane": format.HevcPlane,
           "5.2 HevcPicture": format.HevcPicture, "5.4 SegmentHints": format.SegmentHints,
           "5.5 GridHints": format.GridHints, "5.6 Metadata": format.Metadata}


def spec_table(heading: str) -> list[list[str]]:
    """Rows (cells stripped) of the first table after the heading '### <heading>'."""
    section = SPEC.split(f"### {heading}\n", 1)[1]
    rows = re.findall(r"^\|(.+)\|\s*$", section.split("\n### ", 1)[0].split("\n#### ", 1)[0], re.MULTILINE)
    return [[cell.strip() for cell in row.split("|")] for row in rows[2:]]


def spec_size(type_name: str) -> int | None:
    match = re.fullmatch(r"bytes\[(\d+)\]", type_name)
    return int(match.group(1)) if match else TYPE_SIZES.get(type_name)


@pytest.mark.parametrize("heading", STRUCTS)
def test_table_lists_the_struct_fields_in_order(heading):
    names = [row[1] for row in spec_table(heading)]
    assert names == [subcon.name for subcon in STRUCTS[heading].subcons]


@pytest.mark.parametrize("heading", STRUCTS)
def test_fixed_sizes_and_offsets_agree(heading):
    offset = 0
    for (spec_offset, name, type_name, _), subcon in zip(spec_table(heading), STRUCTS[heading].subcons):
        try:
            size = subcon.sizeof()
        except SizeofError:
            size = None
        assert spec_size(type_name) == size, f"{heading} {name}: spec says {type_name}, code has {size} bytes"
        assert spec_offset == (str(offset) if offset is not None else "var"), f"{heading} {name} offset"
        offset = offset + size if offset is not None and size is not None else None


def test_coding_byte_bits_agree():
    bit_rows = [[cell.strip() for cell in row.split("|")] for row in
                re.findall(r"^\|(.+)\|\s*$", SPEC.split("#### 3.1.1 Coding byte\n", 1)[1].split("\n##", 1)[0],
                           re.MULTILINE)[2:]]
    coding = next(subcon for subcon in format.Header.subcons if subcon.name == "coding").subcon
    while not hasattr(coding, "subcons"):
        coding = coding.subcon
    fields = [(subcon.name, subcon.sizeof()) for subcon in coding.subcons]  # sizes in bits
    top = 7
    expected = []
    for name, bits in fields:
        expected.append((f"{top}-{top - bits + 1}" if bits > 1 else f"{top}", name))
        top -= bits
    assert [(row[0], row[1]) for row in bit_rows] == expected


def test_hexdump_round_trips_byte_for_byte():
    dump = code_block_after("## 9 ")
    data = bytes.fromhex("".join(line.split(":", 1)[1] for line in dump.strip().splitlines()))
    container = format.parse_container(data)
    assert (container.width, container.height, container.hint_layout) == (1, 1, "none")
    assert format.build_container(container) == data
    tiles = format.hevc_plane_tiles(container.sections["luma"], "luma")
    assert [len(nal) for nal in tiles[0]] == [23, 38, 6, 22]


def test_parameter_set_dictionary_is_the_one_in_the_spec():
    assert bytes.fromhex("".join(code_block_after("### 5.3 ").split())) == format.PARAMETER_SET_DICTIONARY
