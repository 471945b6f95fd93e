"""format_spec.md and codec/format.py must describe the same bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from construct import (
    Bytes,
    Const,
    Construct,
    Enum,
    FocusedSeq,
    FormatField,
    GreedyRange,
    IfThenElse,
    Prefixed,
    Renamed,
    SizeofError,
    Transformed,
)

from codec import format

SPEC = (Path(__file__).parents[1] / "format_spec.md").read_text(encoding="utf-8")
TYPE_SIZES = {"u8": 1, "u32be": 4}


def code_block_after(heading: str) -> str:
    """The first fenced code block after ``heading``."""
    return SPEC.split(heading, 1)[1].split("```", 2)[1]


STRUCTS = {"3.1 Header": format.Header, "3.2 Section": format.Section, "5.1 HevcPlane": format.HevcPlane,
           "5.2 HevcPicture": format.HevcPicture, "5.4 SegmentHints": format.SegmentHints,
           "5.5 GridHints": format.GridHints, "5.6 Metadata": format.Metadata}


def spec_table(heading: str, spec: str = SPEC) -> list[list[str]]:
    """Rows (cells stripped) of the first table after the heading '### <heading>'."""
    section = spec.split(f"### {heading}\n", 1)[1]
    return table_rows(re.split(r"\n#+ ", section, maxsplit=1)[0])  # up to the next heading


def table_rows(text: str) -> list[list[str]]:
    """Rows (cells stripped) of the first Markdown table in ``text``, without its head and rule."""
    rows = re.findall(r"^\|(.+)\|\s*$", text, re.MULTILINE)[2:]
    return [[cell.strip() for cell in row.split("|")] for row in rows]


def spec_size(type_name: str) -> int | None:
    match = re.fullmatch(r"bytes\[(\d+)\]", type_name)
    return int(match.group(1)) if match else TYPE_SIZES.get(type_name)


@pytest.mark.parametrize("heading", STRUCTS)
def test_table_lists_the_struct_fields_in_order(heading):
    names = [row[1] for row in spec_table(heading)]
    assert names == [subcon.name for subcon in STRUCTS[heading].subcons]


def unwrapped(subcon: Construct) -> Construct:
    """``subcon`` without its names and docstrings."""
    while isinstance(subcon, Renamed):
        subcon = subcon.subcon
    return subcon


@pytest.mark.parametrize("heading", STRUCTS)
def test_fixed_sizes_and_offsets_agree(heading):
    offset = 0
    for (spec_offset, name, type_name, _), subcon in zip(spec_table(heading), STRUCTS[heading].subcons):
        if isinstance(unwrapped(subcon), IfThenElse):  # present in some versions only: no fixed size
            assert spec_size(type_name) is None, f"{heading} {name}: spec gives a fixed size to a versioned field"
            offset = None
            continue
        try:
            size = subcon.sizeof()
        except SizeofError:
            size = None
        assert spec_size(type_name) == size, f"{heading} {name}: spec says {type_name}, code has {size} bytes"
        assert spec_offset == (str(offset) if offset is not None else "var"), f"{heading} {name} offset"
        offset = offset + size if offset is not None and size is not None else None


def coding_bit_rows(spec: str = SPEC) -> list[list[str]]:
    """Rows (bits | field | meaning) of table 3.1.1."""
    section = spec.split("#### 3.1.1 Coding byte\n", 1)[1].split("\n##", 1)[0]
    return table_rows(section)


def coding_fields() -> list[Construct]:
    """The bit fields of the header's coding byte, in order."""
    coding = next(subcon for subcon in format.Header.subcons if subcon.name == "coding").subcon
    while not hasattr(coding, "subcons"):
        coding = coding.subcon
    return list(coding.subcons)


def test_coding_byte_bits_agree():
    bit_rows = coding_bit_rows()
    fields = [(subcon.name, subcon.sizeof()) for subcon in coding_fields()]  # sizes in bits
    top = 7
    expected = []
    for name, bits in fields:
        expected.append((f"{top}-{top - bits + 1}" if bits > 1 else f"{top}", name))
        top -= bits
    assert [(row[0], row[1]) for row in bit_rows] == expected


STRUCT_NAMES = {id(struct): heading.split(" ", 1)[1] for heading, struct in STRUCTS.items()}


def conventions(spec: str) -> dict[str, str]:
    """Section 2's table: spec type (u8, bytes[n], list(T), ...) -> construct expression (its first `code`)."""
    section = spec.split("## 2 Conventions\n", 1)[1].split("\n## ", 1)[0]
    return {row[0]: re.search(r"`([^`]+)`", row[-1]).group(1) for row in table_rows(section)}


def spec_construct(type_name: str, meaning: str, types: dict[str, str]) -> str | None:
    """The construct expression a spec type stands for (None for a type section 2 does not define).

    `rest` whose meaning reads "one <Struct> (5.x) ..." is that struct repeated to the end of the
    payload, which construct writes GreedyRange(<Struct>)."""
    since = re.fullmatch(r"(.+), from (\d+\.\d+)", type_name)
    if since:
        inner = spec_construct(since.group(1), meaning, types)
        return None if inner is None else re.sub(r"\bT\b", inner, re.sub(r"\bv\b", since.group(2), types["T, from v"]))
    repeated = re.match(r"one (\w+) \(\d+(?:\.\d+)*\)", meaning)
    if type_name == "rest" and repeated:
        return f"GreedyRange({repeated.group(1)})"
    if type_name in types:
        return types[type_name]
    match = re.fullmatch(r"(\w+)([\[(])(.+)[\])]", type_name)  # bytes[4], list(blob)
    if not match:
        return None
    name, bracket, argument = match.groups()
    for pattern, template in types.items():
        parameter = re.fullmatch(rf"{name}{re.escape(bracket)}(\w+)[\])]", pattern)
        if parameter:
            value = spec_construct(argument, "", types) if bracket == "(" else argument
            return None if value is None else re.sub(rf"\b{parameter.group(1)}\b", value, template)
    return None


def code_construct(subcon: Construct) -> str:
    """``subcon`` written the way section 2 writes constructs: Int8ub, Bytes(4), PrefixedArray(VarInt, T), ..."""
    if id(subcon) in STRUCT_NAMES:
        return STRUCT_NAMES[id(subcon)]
    if isinstance(subcon, (Renamed, Const, Enum)):  # names, fixed values and codes: checked by value_mismatches
        return code_construct(subcon.subcon)
    if isinstance(subcon, IfThenElse) and isinstance(subcon.condfunc, format.FromVersion):
        return "If({}.{}, {})".format(*subcon.condfunc.version, code_construct(subcon.thensubcon))
    if isinstance(subcon, FormatField):
        order, letter = subcon.fmtstr
        return f"Int{8 * subcon.length}{'u' if letter.isupper() else 's'}{'l' if order == '<' else 'b'}"
    if isinstance(subcon, Bytes):
        length = subcon.length if isinstance(subcon.length, int) else re.sub(r"this\['(\w+)'\]", r"\1",
                                                                               str(subcon.length))
        return f"Bytes({length})"
    if isinstance(subcon, Prefixed):
        return f"Prefixed({code_construct(subcon.lengthfield)}, {code_construct(subcon.subcon)})"
    if isinstance(subcon, FocusedSeq) and [field.name for field in subcon.subcons] == ["count", "items"]:
        count, items = (field.subcon for field in subcon.subcons)  # PrefixedArray: Rebuild(count), Array(items)
        return f"PrefixedArray({code_construct(count.subcon)}, {code_construct(items.subcon)})"
    if isinstance(subcon, GreedyRange):
        return f"GreedyRange({code_construct(subcon.subcon)})"
    if isinstance(subcon, Transformed) and subcon.sizeof() == 1:
        return "Int8ub"  # a one-byte BitStruct is a u8 read bit by bit; table 3.1.1 checks its bits
    return type(subcon).__name__  # VarInt, GreedyBytes


def type_mismatches(spec: str) -> list[str]:
    """Every section-3/5 table row whose type is not, per section 2, the construct of its field."""
    types, problems = conventions(spec), []
    for heading, struct in STRUCTS.items():
        for (_, name, type_name, meaning), subcon in zip(spec_table(heading, spec), struct.subcons):
            expected, actual = spec_construct(type_name, meaning, types), code_construct(subcon)
            if expected != actual:
                problems.append(f"{heading} {name}: spec type {type_name} is {expected}, the code has {actual}")
    return problems


def enum_codes(meaning: str) -> dict[str, int]:
    """The codes a meaning cell lists as 'CODE: name' (e.g. '0: x1, 1: x2' or '1: `segments` (5.4)')."""
    return {name: int(code) for code, name in re.findall(r"(\d+): `?(\w+)`?", meaning)}


def value_mismatches(spec: str) -> list[str]:
    """Every enum code, constant and the format version that differ between the spec's tables and the code."""
    rows = [(heading, row[1], row[3], subcon) for heading, struct in STRUCTS.items()
            for row, subcon in zip(spec_table(heading, spec), struct.subcons)]
    rows += [("3.1.1 Coding byte", row[1], row[2], subcon)
             for row, subcon in zip(coding_bit_rows(spec), coding_fields())]
    problems = []
    for heading, name, meaning, subcon in rows:
        while isinstance(subcon, Renamed):
            subcon = subcon.subcon
        if isinstance(subcon, Enum):
            codes = {str(symbol): code for symbol, code in subcon.encmapping.items()}
            if enum_codes(meaning) != codes:
                problems.append(f"{heading} {name}: spec codes {enum_codes(meaning)}, the code has {codes}")
        elif enum_codes(meaning):
            problems.append(f"{heading} {name}: the spec lists codes {enum_codes(meaning)}, the code has no Enum")
        elif isinstance(subcon, Const):
            value = subcon.value
            if (f"`{value.decode('ascii')}`" not in meaning) if isinstance(value, bytes) else meaning != str(value):
                problems.append(f"{heading} {name}: the spec says '{meaning}', the code's constant is {value!r}")
        if name == "format_version":
            version = re.search(r"this is (\d+)\.(\d+)", meaning)
            if not version or tuple(map(int, version.groups())) != (format.FORMAT_VERSION_MAJOR,
                                                                       format.FORMAT_VERSION_MINOR):
                problems.append(f"{heading} format_version: '{meaning}' is not "
                                f"{format.FORMAT_VERSION_MAJOR}.{format.FORMAT_VERSION_MINOR}")
    return problems


def test_field_types_agree():
    assert type_mismatches(SPEC) == []


def test_enum_codes_tags_and_constants_agree():
    assert value_mismatches(SPEC) == []


@pytest.mark.parametrize("checker, original, mutated", [
    (type_mismatches, "| 8 | width | varint |", "| 8 | width | u16be |"),
    (type_mismatches, "| 1 | length | varint |", "| 1 | length | u32be |"),
    (type_mismatches, "| 0 | icc_profile | blob |", "| 0 | icc_profile | rest |"),
    (type_mismatches, "| var | slices | list(blob) |", "| var | slices | list(varint) |"),
    (type_mismatches, "| 4 | model_version | bytes[4] |", "| 4 | model_version | bytes[5] |"),
    (value_mismatches, "0: x1, 1: x2, 2: x4", "0: x2, 1: x1, 2: x4"),
    (value_mismatches, "0: `hevc`", "1: `hevc`"),
    (value_mismatches, "1: `segments` (5.4), 2: `grid` (5.5)", "1: `grid` (5.5), 2: `segments` (5.4)"),
    (value_mismatches, "1: luma, 2: hints, 3: metadata", "1: hints, 2: luma, 3: metadata"),
    (value_mismatches, "1: luma, 2: hints, 3: metadata", "1: luma, 2: hints, 4: metadata"),
    (value_mismatches, "this is 2.0", "this is 1.1"),
    (type_mismatches, "| deblock_level | u8, from 1.0 |", "| deblock_level | u8, from 0.5 |"),
    (type_mismatches, "| deblock_level | u8, from 1.0 |", "| deblock_level | u8 |"),
    (value_mismatches, "| 0 | magic | bytes[3] | ASCII `NNC` |", "| 0 | magic | bytes[3] | ASCII `NNX` |"),
])
def test_a_spec_that_drifts_from_the_code_fails_the_check(checker, original, mutated):
    assert SPEC.count(original) == 1, f"the spec no longer reads {original!r}: update this test"
    assert checker(SPEC.replace(original, mutated)) != []


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
