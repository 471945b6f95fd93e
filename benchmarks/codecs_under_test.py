"""The codecs the benchmark compares: each codes a Pillow RGB image at a quality setting."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pillow_heif
from PIL import Image, features

import codec
from codec.hevc import X265_PARAMS, nal_units_of_heif


@dataclass
class Coded:
    """One image coded at one setting: sizes in bytes, the decoded (H, W, 3) uint8 image, seconds."""

    sizes: dict
    decoded: np.ndarray
    encode_s: float
    decode_s: float
    extra: dict = field(default_factory=dict)


@dataclass
class CodecUnderTest:
    """A codec: its settings from lowest to highest rate, and what it is measured by.

    series: size key -> curve name; one coding can give several curves (e.g. HEVC bitstream
    alone, and the same in its .heic file).
    """

    name: str
    qualities: list
    code: Callable[[Image.Image, int], Coded]
    series: dict
    settings: str
    available: Callable[[], str | None] = lambda: None  # None, or why it cannot run here


def _timed(function: Callable, *args: object) -> tuple[object, float]:
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def _pillow_codec(image_format: str, **options: object) -> Callable[[Image.Image, int], Coded]:
    def code(image: Image.Image, quality: int) -> Coded:
        buffer = io.BytesIO()
        _, encode_s = _timed(lambda: image.save(buffer, format=image_format, quality=quality, **options))
        data = buffer.getvalue()
        decoded, decode_s = _timed(lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        return Coded({"file": len(data)}, decoded, encode_s, decode_s)
    return code


def _heif(chroma: int, enc_params: dict | None = None) -> Callable[[Image.Image, int], Coded]:
    def code(image: Image.Image, quality: int) -> Coded:
        buffer = io.BytesIO()
        _, encode_s = _timed(lambda: pillow_heif.from_pillow(image).save(buffer, quality=quality, chroma=chroma,
                                                                          enc_params=enc_params or {}))
        data = buffer.getvalue()
        decoded, decode_s = _timed(
            lambda: np.asarray(pillow_heif.open_heif(io.BytesIO(data)).to_pillow().convert("RGB")))
        payload = sum(len(nal) for nal in nal_units_of_heif(data))
        return Coded({"file": len(data), "bitstream": payload}, decoded, encode_s, decode_s)
    return code


def nnc_coder(baseline: tuple[str, ...] = ()) -> Callable[[Image.Image, int], Coded]:
    """nnc through its public API, with ``baseline`` stages switched to their classical versions."""
    def code(image: Image.Image, quality: int) -> Coded:
        (data, report), encode_s = _timed(lambda: codec.encode_with_report(image, quality, baseline=baseline))
        decoded, decode_s = _timed(lambda: np.asarray(codec.decode(data, baseline=baseline).convert("RGB")))
        return Coded({"file": len(data)}, decoded, encode_s, decode_s,
                     {"luma_scale": report.luma_scale, "luma_quality": report.luma_quality,
                      "luma_loop_filters": report.luma_loop_filters, "hint_layout": report.hint_layout,
                      "hint_params": report.hint_params,
                      "section_bytes": report.section_bytes})
    return code


def nnc_peak_memory_mb(image_path: str, quality: int, crop: int | None) -> float:
    """Peak resident memory (MB) of a fresh process that encodes and decodes one image with nnc."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would report its parent's peak.
    script = (
        "import resource, sys, codec\n"
        "from PIL import Image\n"
        "image = Image.open(sys.argv[1]).convert('RGB')\n"
        "crop = int(sys.argv[3])\n"
        "image = image.crop((0, 0, min(crop, image.width), min(crop, image.height))) if crop else image\n"
        "codec.decode(codec.encode(image, quality=int(sys.argv[2])))\n"
        "status = open('/proc/self/status').read() if sys.platform == 'linux' else ''\n"
        "lines = [line for line in status.splitlines() if line.startswith('VmHWM:')]\n"
        "peak_kb = int(lines[0].split()[1]) if lines else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(peak_kb / 1024)\n"
    )
    output = subprocess.run([sys.executable, "-c", script, image_path, str(quality), str(crop or 0)],
                            check=True, capture_output=True, text=True).stdout
    return float(json.loads(output.strip().splitlines()[-1]))


def _missing_feature(feature: str) -> Callable[[], str | None]:
    return lambda: None if features.check(feature) else f"this Pillow has no {feature} support"


def _missing_jxl() -> str | None:
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
    except ImportError:
        return "pillow-jxl-plugin is not installed"
    return None


NNC_QUALITIES = [1, 2, 3, 5, 7, 10, 13, 16, 20, 25, 35, 45, 55, 70]  # dense at the low rates nnc is made for


def all_codecs() -> list[CodecUnderTest]:
    """Every codec of the full benchmark, nnc first."""
    return [
        CodecUnderTest("nnc", NNC_QUALITIES, nnc_coder(), {"file": "nnc"}, "nnc quality 1..100, all stages"),
        CodecUnderTest("jpeg", [5, 10, 20, 30, 50, 70, 85, 95], _pillow_codec("JPEG", optimize=True, subsampling=2),
                       {"file": "JPEG"}, "Pillow/libjpeg-turbo, optimize=True, 4:2:0"),
        CodecUnderTest("hevc420", [1, 10, 20, 30, 40, 50, 60, 70], _heif(420),
                       {"bitstream": "HEVC 4:2:0", "file": "HEIF 4:2:0 (.heic)"},
                       "pillow-heif x265 defaults, 4:2:0; bitstream = NAL units without the HEIF container"),
        CodecUnderTest("hevc420-psnr", [1, 10, 20, 30, 40, 50, 60, 70], _heif(420, X265_PARAMS),
                       {"bitstream": "HEVC 4:2:0, nnc's x265 settings"},
                       "pillow-heif 4:2:0 with the x265 settings nnc uses (psy-rd 0, psy-rdoq 0, aq-mode 0): "
                       "the part of nnc's gain that is x265 tuning"),
        CodecUnderTest("hevc444", [1, 10, 20, 30, 40, 50, 60, 70], _heif(444), {"bitstream": "HEVC 4:4:4"},
                       "pillow-heif x265 defaults, 4:4:4, NAL units without the HEIF container"),
        CodecUnderTest("webp", [0, 5, 15, 30, 50, 70, 85, 95], _pillow_codec("WEBP", method=6), {"file": "WebP"},
                       "Pillow/libwebp, method=6", _missing_feature("webp")),
        CodecUnderTest("avif", [0, 10, 25, 40, 55, 70, 85, 95], _pillow_codec("AVIF"), {"file": "AVIF"},
                       "Pillow/libavif defaults", _missing_feature("avif")),
        CodecUnderTest("jxl", [1, 10, 25, 40, 55, 70, 85, 95], _pillow_codec("JXL"), {"file": "JPEG XL"},
                       "pillow-jxl-plugin (libjxl) defaults", _missing_jxl),
    ]
