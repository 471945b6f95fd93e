"""Fuzzing the decoder and `nnc info` with mutations of valid files.

Every case must decode or raise the codec's own error (NncError) with a one-line message, within
5 s, and without growing memory past the configured pixel limit. Cases: bit flips, truncations,
splices of two files, header fields set to extremes, and payload mutations with the CRCs made
valid again (so the mutation reaches the payload parsers, libde265 and the hint decoder).

NNC_FUZZ_CASES sets the number of cases per strategy (default 1000: 5000 cases, under a minute).
Inputs that ever failed are kept in tests/data/fuzz/ and replayed by test_regressions.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import codec
from codec import format
from conftest import synthetic_rgb

CASES = int(os.environ.get("NNC_FUZZ_CASES", "1000"))
OUTCOMES: Counter = Counter()  # "decoded", or the error class and the message's first words
CASE_SECONDS = 5
MAX_PIXELS = 1 << 20  # decoder limit during fuzzing: files claiming more must be refused before decoding
REGRESSIONS = Path(__file__).parent / "data" / "fuzz"
FUZZ_SETTINGS = settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))


def _seed_files() -> list[bytes]:
    from codec.pipeline import ImageEncoder

    color = synthetic_rgb(48, 64)
    files = [
        ImageEncoder(color).encode(1)[0],  # lowest rate: luma x4, segment hints
        ImageEncoder(color).encode(60)[0],  # grid hints
        ImageEncoder(color[..., 0]).encode(40)[0],  # grayscale
        ImageEncoder(synthetic_rgb(6, 2100)).encode(30)[0],  # two tiles
    ]
    return files


SEEDS = _seed_files()


class CaseTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


def check_case(data: bytes) -> None:
    """Decode and info must succeed or raise NncError with a one-line message, in CASE_SECONDS."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(CASE_SECONDS)
    try:
        for action in (lambda: codec.decode(data, max_pixels=MAX_PIXELS),
                       lambda: codec.info(data, max_pixels=MAX_PIXELS)):
            try:
                result = action()
            except codec.NncError as error:
                assert str(error) and "\n" not in str(error), repr(error)
                OUTCOMES[f"{type(error).__name__}: {re.sub(r'[0-9]+', 'N', ' '.join(str(error).split()[:4]))}"] += 1
                continue
            OUTCOMES["decoded" if isinstance(result, Image.Image) else "info read"] += 1
            if isinstance(result, Image.Image):
                assert result.width * result.height <= MAX_PIXELS
    except CaseTimeout:
        _keep(data)
        pytest.fail(f"a case took over {CASE_SECONDS} s")
    except BaseException:
        _keep(data)
        raise
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _keep(data: bytes) -> None:
    """Save a failing input as a regression file (named by its digest)."""
    import hashlib

    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    (REGRESSIONS / f"{hashlib.sha256(data).hexdigest()[:16]}.nnc").write_bytes(data)


def _with_valid_crcs(container: format.Container) -> bytes:
    return format.build_container(container)


seeds = st.sampled_from(range(len(SEEDS)))


@FUZZ_SETTINGS
@given(seeds, st.lists(st.integers(0, 1 << 20), min_size=1, max_size=8))
def test_bit_flips(seed, positions):
    data = bytearray(SEEDS[seed])
    for position in positions:
        data[position % len(data)] ^= 1 << (position % 8)
    check_case(bytes(data))


@FUZZ_SETTINGS
@given(seeds, st.floats(0, 1))
def test_truncations(seed, fraction):
    data = SEEDS[seed]
    check_case(data[: int(len(data) * fraction)])


@FUZZ_SETTINGS
@given(seeds, seeds, st.floats(0, 1), st.floats(0, 1))
def test_splices(first, second, cut_first, cut_second):
    a, b = SEEDS[first], SEEDS[second]
    check_case(a[: int(len(a) * cut_first)] + b[int(len(b) * cut_second):])


extreme_sizes = st.sampled_from([0, 1, 2, 63, 64, 65, 2047, 2048, 2049, 1 << 16, (1 << 32) - 1, 1 << 40, (1 << 63)])


@FUZZ_SETTINGS
@given(seeds, extreme_sizes, extreme_sizes, st.sampled_from([1, 2, 4]),
       st.sampled_from(["none", "segments", "grid"]))
def test_header_fields_at_extremes(seed, width, height, luma_scale, hint_layout):
    container = format.parse_container(SEEDS[seed])
    container.width, container.height, container.luma_scale = max(width, 1), max(height, 1), luma_scale
    container.hint_layout = hint_layout
    try:
        data = _with_valid_crcs(container)
    except Exception:  # a value the declaration cannot even build (over 64 bits): nothing to decode
        return
    check_case(data)


@FUZZ_SETTINGS
@given(seeds, st.sampled_from(["luma", "hints"]), st.data())
def test_payload_mutations_with_valid_crcs(seed, section, data_strategy):
    container = format.parse_container(SEEDS[seed])
    if section not in container.sections:
        section = "luma"
    payload = bytearray(container.sections[section])
    kind = data_strategy.draw(st.sampled_from(["flip", "set", "cut", "insert", "lengths"]))
    position = data_strategy.draw(st.integers(0, max(len(payload) - 1, 0)))
    if kind == "flip" and payload:
        payload[position] ^= 1 << data_strategy.draw(st.integers(0, 7))
    elif kind == "set" and payload:
        payload[position] = data_strategy.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
    elif kind == "cut":
        del payload[position:]
    elif kind == "insert":
        payload[position:position] = data_strategy.draw(st.binary(min_size=1, max_size=16))
    else:  # a varint length or count early in the payload set to an extreme
        payload[position:position + 1] = bytes([0xFF] * 9 + [0x7F])
    container.sections[section] = bytes(payload)
    check_case(_with_valid_crcs(container))


def test_regressions():
    """Hostile inputs kept in tests/data/fuzz/: each must give NncError (none of them is a valid file)."""
    paths = sorted(REGRESSIONS.glob("*.nnc"))
    assert paths
    for path in paths:
        check_case(path.read_bytes())
        with pytest.raises(codec.NncError):
            codec.decode(path.read_bytes(), max_pixels=MAX_PIXELS)


def test_memory_stayed_bounded_and_report():
    """After all the cases above, the process never held more than 1.5 GB; NNC_FUZZ_REPORT=FILE
    writes the outcome counts there."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if os.environ.get("NNC_FUZZ_REPORT"):
        Path(os.environ["NNC_FUZZ_REPORT"]).write_text(json.dumps(
            {"cases_per_strategy": CASES, "peak_rss_mb": peak_mb, "outcomes": OUTCOMES.most_common()}, indent=1))
    assert peak_mb < 1500, peak_mb


def test_seeds_are_valid():
    for data in SEEDS:
        assert np.asarray(codec.decode(data)).size > 0
