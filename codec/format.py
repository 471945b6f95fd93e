"""The .nnc container, declared once with construct. Nothing else in nnc packs or parses bytes.

Every Struct names the format_spec.md section it implements; tests/test_format_spec.py checks
that the spec's tables list the same fields in the same order with the same sizes.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Const,
    ConstructError,
    Enum,
    GreedyBytes,
    GreedyRange,
    If,
    Int8ub,
    Int32ub,
    Prefixed,
    PrefixedArray,
    StreamError,
    Struct,
    ValidationError,
    this,
)
from construct import Container as ParsedStruct
from construct import VarInt as _ConstructVarInt

from .errors import FormatError, LimitError

MAGIC = b"NNC"
FORMAT_VERSION_MAJOR = 2
FORMAT_VERSION_MINOR = 0
DEBLOCK_LEVEL_SINCE = (1, 0)  # format version from which the header has a deblock_level byte
COLOR_STRENGTH_SINCE = (2, 0)  # ... and a color_strength byte, in files whose stage 3 runs its network
TILE_SIDE = 2048
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS

MAX_VARINT_BYTES = 10  # spec 2


class VarInt(type(_ConstructVarInt)):
    """construct's VarInt (unsigned LEB128) of at most MAX_VARINT_BYTES bytes (spec 2): a longer one
    is neither read nor written."""

    def _parse(self, stream, context, path):  # noqa: ANN001 (construct's signature)
        value = 0
        for index in range(MAX_VARINT_BYTES):
            byte = stream.read(1)
            if not byte:
                raise StreamError("stream read less than specified amount, expected 1, found 0", path=path)
            value |= (byte[0] & 0x7F) << (7 * index)
            if not byte[0] & 0x80:
                return value
        raise ValidationError(f"a varint longer than {MAX_VARINT_BYTES} bytes", path=path)

    def _build(self, obj, stream, context, path):  # noqa: ANN001 (construct's signature)
        if isinstance(obj, int) and obj >= 1 << (7 * MAX_VARINT_BYTES):
            raise ValidationError(f"{obj} needs a varint longer than {MAX_VARINT_BYTES} bytes", path=path)
        return super()._build(obj, stream, context, path)


VarInt = VarInt()

LUMA_SCALES = {"x1": 1, "x2": 2, "x4": 4}
LUMA_CODECS = {"hevc": 0}
HINT_LAYOUTS = {"none": 0, "segments": 1, "grid": 2}


class FromVersion:
    """The condition of a header field present from format ``version`` (major, minor) on (and, with
    ``only_if``, in those files where it holds): called by construct with the header parsed so far
    (or being built)."""

    def __init__(self, version: tuple[int, int], only_if: Callable[[ParsedStruct], bool] | None = None) -> None:
        self.version = version
        self.only_if = only_if

    def __call__(self, context: ParsedStruct) -> bool:
        recent = (context.format_version.major, context.format_version.minor) >= self.version
        return recent and (self.only_if is None or self.only_if(context))


COLOR_STRENGTH_FULL = 8  # a color_strength nibble that applies the colorizer's correction as it is (eighths)
COLOR_STRENGTH_MAX = 15  # the largest a nibble holds


def runs_the_colorizer(hint_layout: str, classical_color: bool) -> bool:
    """Whether stage 3 runs its network on a file, as its header tells: color hints and the
    classical_color bit clear (the condition of its color_strength byte; full-size chroma, which no
    network touches, is in the hints)."""
    return hint_layout != "none" and not classical_color


def _has_color_strength(context: ParsedStruct) -> bool:
    """``runs_the_colorizer`` for a header parsed so far, or being built."""
    return runs_the_colorizer(context.coding.hint_layout, bool(context.coding.classical_color))


# spec 3.1 Header
Header = Struct(
    "magic" / Const(MAGIC) * "ASCII 'NNC'",
    "format_version" / BitStruct(
        "major" / BitsInteger(4) * "incompatible changes; decoders refuse a newer major",
        "minor" / BitsInteger(4) * "compatible additions",
    ) * "format version: major (high nibble), minor (low nibble)",
    "model_version" / Bytes(4) * "first 4 bytes of the model digest (spec 6) of the weights that decode",
    "width" / VarInt * "image width in pixels, >= 1",
    "height" / VarInt * "image height in pixels, >= 1",
    "coding" / BitStruct(
        "luma_scale" / Enum(BitsInteger(2), x1=0, x2=1, x4=2) * "luma downsampling factor",
        "luma_codec" / Enum(BitsInteger(3), **LUMA_CODECS) * "coder of the luma stream",
        "hint_layout" / Enum(BitsInteger(2), **HINT_LAYOUTS) * "color hints layout",
        "classical_color" / BitsInteger(1) * "1: stage 3 runs its classical baseline for this file",
    ) * "coding choices, one byte",
    "deblock_level" / If(FromVersion(DEBLOCK_LEVEL_SINCE), Int8ub) * "stage 4: 0 off, else a luma PSNR in quarter "
                                                                      "dB, the network's input (from format 1.0)",
    "color_strength" / If(FromVersion(COLOR_STRENGTH_SINCE, _has_color_strength), BitStruct(
        "cb" / BitsInteger(4) * "scale of the colorizer's Cb correction, in eighths (8: as it is)",
        "cr" / BitsInteger(4) * "the same for Cr",
    )) * "stage 3: the network's correction per plane (from format 2.0, when classical_color is 0 and "
         "there are hints)",
)

# spec 3.2 Section
SECTION_TAGS = {"luma": 1, "hints": 2, "metadata": 3}
SECTION_TAG_NAMES = {code: name for name, code in SECTION_TAGS.items()}
Section = Struct(
    "tag" / Enum(Int8ub, **SECTION_TAGS) * "section type; decoders skip unknown tags",
    "length" / VarInt * "payload length in bytes",
    "crc32" / Int32ub * "CRC-32 (zlib) of the bytes since the previous section's payload, then the payload",
    "payload" / Bytes(this.length) * "stage payload (spec 5)",
)
_SectionPrefix = Struct(*Section.subcons[:2])
_SectionHeadRaw = Struct("tag" / Int8ub, *Section.subcons[1:3])  # any tag, so unknown ones can be skipped
MAX_HEADER_SIZE = len(MAGIC) + 1 + 4 + 2 * MAX_VARINT_BYTES + 1 + 1 + 1
MAX_SECTION_PREFIX_SIZE = 1 + MAX_VARINT_BYTES + 4

# spec 5.2 HevcPicture, 5.1 HevcPlane (luma stream, grid hints)
HevcPicture = Struct(
    "parameter_sets" / Prefixed(VarInt, GreedyBytes) * "VPS, SPS, PPS as a NalUnits, raw DEFLATE with the "
                                                       "preset dictionary of spec 5.3",
    "slices" / PrefixedArray(VarInt, Prefixed(VarInt, GreedyBytes)) * "slice segment NAL units",
)
HevcPlane = Struct(
    "tiles" / GreedyRange(HevcPicture) * "one picture per tile in raster order",
)
NalUnits = PrefixedArray(VarInt, Prefixed(VarInt, GreedyBytes))
NAL_TYPE_VPS, NAL_TYPE_PPS = 32, 34
MAX_PARAMETER_SETS_SIZE = 4096  # bytes, inflated: bounds the work a hostile file can ask for

# spec 5.3 Parameter-set dictionary: x265's parameter sets for pictures of common sizes, as NalUnits:
# coded without loop filters (format 1.1), then with them (format 1.0's whole dictionary, kept last:
# the back-references of a 1.0 file reach into it only, so they inflate as before)
PARAMETER_SET_DICTIONARY = bytes.fromhex(
    "031740010c01ffff0408000003009ff8000003000096ba0240294201010408000003009ff8000003000096c004008008"
    "0165ba924a4b9b020000030032000003000210074401c17183a480031740010c01ffff0408000003009ff80000030000"
    "96ba0240294201010408000003009ff8000003000096c0040080180596ea49292e6c0800000300c80000030008400744"
    "01c17183a480031740010c01ffff0408000003009ff800000300001eba0240264201010408000003009ff80000030000"
    "1ec08204165baaba4b9b020000030032000003000210074401c17183a480031740010c01ffff0408000003009ff80000"
    "0300001eba0240254201010408000003009ff800000300001ec08204165bab9292e6c08000000c800000030084074401"
    "c17181a480031740010c01ffff0408000003009ff800000300001eba0240264201010408000003009ff800000300001e"
    "c0c204165ba924a4b9b02000000303200000030021074401c17181a480031740010c01ffff0408000003009ff8000003"
    "00001eba0240264201010408000003009ff800000300001ec08206165ba924a4b9b02000000303200000030021074401"
    "c17181a480031740010c01ffff0408000003009ff800000300001eba0240274201010408000003009ff800000300001e"
    "c060808165ba924a4b9b020000030032000003000210074401c17183a480031740010c01ffff0408000003009ff80000"
    "0300001eba0240274201010408000003009ff800000300001ec04080c165ba924a4b9b02000003003200000300021007"
    "4401c17181a480031740010c01ffff0408000003009ff800000300003cba0240274201010408000003009ff800000300"
    "003cc0302010165ba924a4b9b02000000303200000030021074401c17183a480031740010c01ffff0408000003009ff8"
    "00000300003cba0240274201010408000003009ff800000300003cc0202018165ba924a4b9b020000003032000000300"
    "21074401c17183a480031740010c01ffff0408000003009ff800000300003cba0240264201010408000003009ff80000"
    "0300003cc0302020596ea49292e6c08000000c800000030084074401c17183a480031740010c01ffff0408000003009f"
    "f800000300003fba0240284201010408000003009ff800000300003fc01808040596ea49292e6c0800000300c8000003"
    "000840074401c17183a480031740010c01ffff0408000003009ff800000300005aba0240284201010408000003009ff8"
    "00000300005ac01808020165ba924a4b9b020000030032000003000210074401c17183a480031740010c01ffff040800"
    "0003009ff800000300005aba0240284201010408000003009ff800000300005ac01008030165ba924a4b9b0200000300"
    "32000003000210074401c17183a480"
) + bytes.fromhex(
    "031740010c01ffff0408000003009ff8000003000096ba0240294201010408000003009ff8000003000096c004008008"
    "0165ba924a6b9b020000030032000003000210064401c1718312031740010c01ffff0408000003009ff8000003000096"
    "ba0240294201010408000003009ff8000003000096c0040080180596ea4929ae6c0800000300c8000003000840064401"
    "c1718312031740010c01ffff0408000003009ff800000300001eba0240264201010408000003009ff800000300001ec0"
    "8204165baaba6b9b020000030032000003000210064401c1718312031740010c01ffff0408000003009ff80000030000"
    "1eba0240254201010408000003009ff800000300001ec08204165bab929ae6c08000000c800000030084064401c17181"
    "12031740010c01ffff0408000003009ff800000300001eba0240264201010408000003009ff800000300001ec0c20416"
    "5ba924a6b9b02000000303200000030021064401c1718112031740010c01ffff0408000003009ff800000300001eba02"
    "40264201010408000003009ff800000300001ec08206165ba924a6b9b02000000303200000030021064401c171811203"
    "1740010c01ffff0408000003009ff800000300001eba0240274201010408000003009ff800000300001ec060808165ba"
    "924a6b9b020000030032000003000210064401c1718312031740010c01ffff0408000003009ff800000300001eba0240"
    "274201010408000003009ff800000300001ec04080c165ba924a6b9b020000030032000003000210064401c171811203"
    "1740010c01ffff0408000003009ff800000300003cba0240274201010408000003009ff800000300003cc0302010165b"
    "a924a6b9b02000000303200000030021064401c1718312031740010c01ffff0408000003009ff800000300003cba0240"
    "274201010408000003009ff800000300003cc0202018165ba924a6b9b02000000303200000030021064401c171831203"
    "1740010c01ffff0408000003009ff800000300003cba0240264201010408000003009ff800000300003cc0302020596e"
    "a4929ae6c08000000c800000030084064401c1718312031740010c01ffff0408000003009ff800000300003fba024028"
    "4201010408000003009ff800000300003fc01808040596ea4929ae6c0800000300c8000003000840064401c171831203"
    "1740010c01ffff0408000003009ff800000300005aba0240284201010408000003009ff800000300005ac01808020165"
    "ba924a6b9b020000030032000003000210064401c1718312031740010c01ffff0408000003009ff800000300005aba02"
    "40284201010408000003009ff800000300005ac01008030165ba924a6b9b020000030032000003000210064401c17183"
    "12"
)

# spec 5.4 SegmentHints
SegmentHints = Struct(
    "segment_step" / Int8ub * "seed spacing of the segmentation, in luma-stream pixels, >= 2",
    "quant_step" / Int8ub * "quantisation step of hint values, >= 1",
    "hint_count" / VarInt * "number of non-empty segments, as the encoder found",
    "cb_spread" / Int8ub * "residual model parameter of Cb, 1..255",
    "cr_spread" / Int8ub * "residual model parameter of Cr, 1..255",
    "coded" / GreedyBytes * "range-coder words, little-endian, trailing zero bytes dropped",
)

# spec 5.5 GridHints
GridHints = Struct(
    "factor_log2" / Int8ub * "chroma thumbnail downsampling: factor 2**factor_log2, 0..3 (0: full size)",
    "thumbnail" / GreedyBytes * "HevcPlane of Cb | Cr side by side",
)

# spec 5.6 Metadata (the metadata section's payload is this struct, raw-DEFLATE compressed)
Metadata = Struct(
    "icc_profile" / Prefixed(VarInt, GreedyBytes) * "ICC profile of the source image, or empty",
    "exif" / Prefixed(VarInt, GreedyBytes) * "Exif block of the source image (orientation reset to 1), or empty",
)
MAX_METADATA_SIZE = 1 << 18  # bytes, inflated


@dataclass
class Container:
    """A parsed .nnc file: header fields and the payload of each known section (bytes)."""

    width: int
    height: int
    model_version: bytes
    luma_scale: int
    luma_codec: str
    hint_layout: str
    sections: dict[str, bytes] = field(default_factory=dict)
    classical_color: bool = False  # the encoder found the classical colorization closer: stage 3 runs it
    deblock_level: int | None = 0  # stage 4's strength (spec 3.1); None: a file of format 0.x (stage 4 by rate)
    # stage 3's (Cb, Cr) scale of the network's correction in eighths (spec 3.1; files without the field: 8, as it is)
    color_strength: tuple[int, int] = (COLOR_STRENGTH_FULL, COLOR_STRENGTH_FULL)
    format_version: tuple[int, int] = (FORMAT_VERSION_MAJOR, FORMAT_VERSION_MINOR)
    section_sizes: dict[str, int] = field(default_factory=dict)  # bytes on disk, headers included
    truncated: bool = False  # parsed with partial=True and the file was cut short
    cut_section: str | None = None  # then the known section it was cut in (None: bytes that are not one)

    @property
    def holds_the_image(self) -> bool:
        """Whether ``sections`` hold every one the image needs: luma, and hints unless grayscale."""
        return "luma" in self.sections and (self.hint_layout == "none" or "hints" in self.sections)


def _scale_name(scale: int) -> str:
    return {value: name for name, value in LUMA_SCALES.items()}[scale]


def build_container(container: Container) -> bytes:
    """Serialise ``container`` into .nnc bytes in its format version (a parsed file is written back
    as it was; a new Container gets this nnc's); sections in spec order: luma, hints, metadata.
    ValueError for a container of format 1.0 or later without a deblock level, or with a color
    strength outside 0..15."""
    major, minor = container.format_version
    if (major, minor) >= DEBLOCK_LEVEL_SINCE and container.deblock_level is None:
        raise ValueError(f"a file of format {major}.{minor} needs a deblock level")
    if any(not 0 <= value <= COLOR_STRENGTH_MAX for value in container.color_strength):
        raise ValueError(f"color strength {container.color_strength} is not in 0..{COLOR_STRENGTH_MAX}")
    header = Header.build({
        "format_version": {"major": major, "minor": minor},
        "model_version": container.model_version,
        "width": container.width,
        "height": container.height,
        "coding": {"luma_scale": _scale_name(container.luma_scale), "luma_codec": container.luma_codec,
                   "hint_layout": container.hint_layout, "classical_color": int(container.classical_color)},
        "deblock_level": container.deblock_level,
        "color_strength": dict(zip(("cb", "cr"), container.color_strength)),
    })
    pieces = [header]
    unprotected = header  # bytes since the previous section's payload: the CRC covers them too
    for tag in SECTION_TAGS:
        if tag not in container.sections:
            continue
        payload = container.sections[tag]
        crc = zlib.crc32(payload, zlib.crc32(unprotected + _section_prefix(tag, len(payload))))
        pieces.append(Section.build({"tag": tag, "length": len(payload), "crc32": crc, "payload": payload}))
        unprotected = b""
    return b"".join(pieces)


def _section_prefix(tag: str, length: int) -> bytes:
    """The tag and length bytes of a section: what precedes its crc32 field."""
    return _SectionPrefix.build({"tag": tag, "length": length})


def parse_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Container, int]:
    """Parse and check the header; returns the container (no sections yet) and the header size.

    Refuses (FormatError / LimitError) a wrong magic, a newer major version, reserved codes (an
    unknown luma codec among them), and a size over ``max_pixels`` pixels, before any pixel buffer exists.
    """
    if data[:len(MAGIC)] != MAGIC:
        raise FormatError("not an .nnc file (bad magic)")
    if len(data) > len(MAGIC) and data[len(MAGIC)] >> 4 > FORMAT_VERSION_MAJOR:
        raise FormatError(f"format version {data[len(MAGIC)] >> 4}.{data[len(MAGIC)] & 15} is newer than "
                          f"this decoder ({FORMAT_VERSION_MAJOR}.{FORMAT_VERSION_MINOR}): upgrade nnc")
    stream = io.BytesIO(data[:MAX_HEADER_SIZE])
    try:
        header = Header.parse_stream(stream)
    except ConstructError as error:
        raise FormatError(f"bad header: {_construct_message(error)}") from None
    width, height = header.width, header.height
    if width < 1 or height < 1:
        raise FormatError(f"image size {width}x{height} is empty")
    if width * height > max_pixels:
        raise LimitError(f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
                         "(--max-pixels)")
    if str(header.coding.luma_codec) not in LUMA_CODECS:
        raise FormatError(f"unknown luma codec {int(header.coding.luma_codec)} in the header: this decoder "
                          f"knows {', '.join(f'{code} ({name})' for name, code in LUMA_CODECS.items())}")
    for name, known in (("luma_scale", LUMA_SCALES), ("hint_layout", HINT_LAYOUTS)):
        if str(header.coding[name]) not in known:
            raise FormatError(f"reserved {name} code {int(header.coding[name])} in the header")
    container = Container(
        width=width, height=height, model_version=bytes(header.model_version),
        luma_scale=LUMA_SCALES[str(header.coding.luma_scale)], luma_codec=str(header.coding.luma_codec),
        hint_layout=str(header.coding.hint_layout), classical_color=bool(header.coding.classical_color),
        format_version=(header.format_version.major, header.format_version.minor),
        deblock_level=header.deblock_level,
    )
    if header.color_strength is not None:
        container.color_strength = (header.color_strength.cb, header.color_strength.cr)
    return container, stream.tell()


def parse_container(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, partial: bool = False) -> Container:
    """Parse .nnc bytes: header, then sections, each length-checked against the file and CRC-checked.

    Unknown section tags are skipped; known ones must come in spec order (luma, hints, metadata),
    each at most once. Raises FormatError naming the field and offset on any defect; with
    ``partial``, a file that ends inside a section keeps the sections before it (``truncated`` is
    set, and ``cut_section`` names the section, if its tag is one the file may still hold; bytes
    appended to a complete file look the same, and get None), and bytes after every section the
    image needs that fail as a section (a bad header or CRC: the metadata section damaged, or bytes
    appended) are left out the same way.
    """
    container, offset = parse_header(data, max_pixels)
    unprotected_start = 0

    def after_the_image(start: int, what: str) -> None:
        """Bytes at ``start`` that fail as a section (``what``) after every section the image needs:
        with ``partial`` they are left out, as bytes that are not a section (cut_short); else FormatError."""
        if not partial:
            raise FormatError(f"the {len(data) - start} bytes at offset {start}, after the file's last section, "
                              f"{what}: the file is corrupt, or bytes were appended to it")
        container.truncated, container.cut_section = True, None

    def cut_short(start: int, what: str) -> None:
        """The file ends inside what starts at ``start``: FormatError, or with ``partial`` mark it truncated."""
        name = SECTION_TAG_NAMES.get(data[start])
        expected = name is not None and name not in container.sections and all(
            SECTION_TAGS[name] > SECTION_TAGS[read] for read in container.sections) and not (
            name == "hints" and container.hint_layout == "none")
        if partial:
            container.truncated, container.cut_section = True, name if expected else None
            return
        if expected:
            raise FormatError(f"file is truncated: the {name} section at offset {start} {what}")
        raise FormatError(f"file is truncated or has bytes appended: the {len(data) - start} bytes at offset "
                          f"{start} are not a complete section")

    while offset < len(data):
        start = offset
        stream = io.BytesIO(data[offset:offset + MAX_SECTION_PREFIX_SIZE])
        try:
            prefix = _SectionHeadRaw.parse_stream(stream)
        except StreamError:
            cut_short(start, "is cut short in its header")
            break
        except ConstructError as error:
            if not container.holds_the_image:
                raise FormatError(f"corrupt section header at offset {start}: {_construct_message(error)}") from None
            after_the_image(start, f"are not a section header ({_construct_message(error)})")
            break
        offset += stream.tell()
        if offset + prefix.length > len(data):
            cut_short(start, f"claims {prefix.length} bytes, {len(data) - offset} remain")
            break
        payload = data[offset:offset + prefix.length]
        if zlib.crc32(payload, zlib.crc32(data[unprotected_start:offset - 4])) != prefix.crc32:
            if not container.holds_the_image:
                raise FormatError(f"CRC mismatch in the section at offset {start}: the file is corrupt")
            after_the_image(start, "fail the CRC of a section")
            break
        tag = SECTION_TAG_NAMES.get(prefix.tag)
        if tag is not None:
            if tag in container.sections:
                raise FormatError(f"duplicate {tag} section at offset {start}")
            previous = next(reversed(container.sections), None)
            if previous is not None and SECTION_TAGS[tag] < SECTION_TAGS[previous]:
                raise FormatError(f"{tag} section at offset {start} comes after the {previous} section: sections "
                                  f"must come in the order {', '.join(SECTION_TAGS)}")
            container.sections[tag] = payload
            container.section_sizes[tag] = offset + prefix.length - start
        offset += prefix.length
        unprotected_start = offset
    if container.hint_layout == "none" and "hints" in container.sections:
        raise FormatError("a grayscale file (hint layout none) has a hints section: the file is corrupt")
    if container.hint_layout == "none" and container.classical_color:
        raise FormatError("a grayscale file (hint layout none) has the classical_color bit set: the file is corrupt")
    return container


def _construct_message(error: ConstructError) -> str:
    """'field NAME: what is wrong', from construct's error (whose path reads '(parsing) -> a -> b')."""
    field_name = (error.path or "").split(" -> ")[-1].strip() or "?"
    if isinstance(error, StreamError):
        return f"cut short in field '{field_name}'"
    details = [line for line in str(error).splitlines() if line and not line.startswith("Error in path")]
    return f"field '{field_name}': {details[-1] if details else type(error).__name__}"


def parse_payload(struct: Struct, payload: bytes, what: str) -> ParsedStruct:
    """Parse a section payload with ``struct`` (spec 5); FormatError on any defect."""
    try:
        return struct.parse(payload)
    except ConstructError as error:
        raise FormatError(f"bad {what} payload: {_construct_message(error)}") from None


def build_metadata(icc_profile: bytes, exif: bytes) -> bytes:
    """The metadata section payload (spec 5.6): raw DEFLATE of a Metadata struct."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflate.compress(Metadata.build({"icc_profile": icc_profile, "exif": exif})) + deflate.flush()


def parse_metadata(payload: bytes) -> tuple[bytes, bytes]:
    """(icc_profile, exif) of a metadata section payload; FormatError on any defect."""
    metadata = parse_payload(Metadata, _inflate(payload, MAX_METADATA_SIZE, None, "metadata"), "metadata")
    return bytes(metadata.icc_profile), bytes(metadata.exif)


def _inflate(data: bytes, limit: int, dictionary: bytes | None, what: str) -> bytes:
    """Inflate raw DEFLATE ``data`` to at most ``limit`` bytes; FormatError if it is broken or longer."""
    inflate = zlib.decompressobj(-15, zdict=dictionary) if dictionary else zlib.decompressobj(-15)
    try:
        inflated = inflate.decompress(data, limit)
    except zlib.error:
        raise FormatError(f"bad {what} payload: does not inflate") from None
    if not inflate.eof or inflate.unconsumed_tail:
        raise FormatError(f"bad {what} payload: cut short or too long")
    return inflated


def nal_unit_type(nal_unit: bytes) -> int:
    """The type field (6 bits) of an HEVC NAL unit header."""
    if not nal_unit:
        raise FormatError("empty NAL unit in an HEVC picture")
    return (nal_unit[0] >> 1) & 0x3F


def is_parameter_set(nal_unit: bytes) -> bool:
    """True for a VPS, SPS or PPS."""
    return NAL_TYPE_VPS <= nal_unit_type(nal_unit) <= NAL_TYPE_PPS


def build_hevc_plane(tiles: list[list[bytes]]) -> bytes:
    """The HevcPlane bytes (spec 5.1) of per-tile NAL unit lists."""
    pictures = []
    for nal_units in tiles:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=PARAMETER_SET_DICTIONARY)
        parameter_sets = NalUnits.build([n for n in nal_units if is_parameter_set(n)])
        pictures.append({"parameter_sets": deflate.compress(parameter_sets) + deflate.flush(),
                         "slices": [n for n in nal_units if not is_parameter_set(n)]})
    return HevcPlane.build({"tiles": pictures})


def hevc_plane_tiles(payload: bytes, what: str) -> list[list[bytes]]:
    """Per-tile NAL unit lists (parameter sets first) from HevcPlane bytes; FormatError on any defect."""
    tiles = []
    for picture in parse_payload(HevcPlane, payload, what).tiles:
        parameter_sets = _inflate(bytes(picture.parameter_sets), MAX_PARAMETER_SETS_SIZE, PARAMETER_SET_DICTIONARY,
                                  f"{what} parameter sets")
        nal_units = [bytes(n) for n in parse_payload(NalUnits, parameter_sets, what)]
        tiles.append(nal_units + [bytes(n) for n in picture.slices])
    return tiles
