"""Decoding is bit-exact on every machine: shipped files decode to recorded pixel digests.

Regenerate (only after a deliberate format or decoder change) with NNC_REGEN_GOLDEN=1.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from conftest import SAMPLE_PHOTO

GOLDEN = Path(__file__).parent / "data" / "golden"
CASES = {"photo_grid": 20, "photo_segments": 1}  # file stem -> quality it was encoded at


def _source() -> Image.Image:
    with Image.open(SAMPLE_PHOTO) as image:
        return image.convert("RGB").crop((0, 0, 192, 128))


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(np.asarray(image).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def digests() -> dict:
    """The recorded digests; with NNC_REGEN_GOLDEN=1, first re-encode the files and record anew."""
    if os.environ.get("NNC_REGEN_GOLDEN"):
        recorded = {}
        for stem, quality in CASES.items():
            data = codec.encode(_source(), quality=quality)
            (GOLDEN / f"{stem}.nnc").write_bytes(data)
            recorded[stem] = _digest(codec.decode(data))
        (GOLDEN / "digests.json").write_text(json.dumps(recorded, indent=1) + "\n")
    return json.loads((GOLDEN / "digests.json").read_text())


@pytest.mark.parametrize("stem", CASES)
def test_golden_file_decodes_to_the_recorded_pixels(stem, digests):
    assert _digest(codec.decode((GOLDEN / f"{stem}.nnc").read_bytes())) == digests[stem]


def test_golden_files_cover_both_hint_layouts():
    layouts = {codec.info((GOLDEN / f"{stem}.nnc").read_bytes())["hint_layout"] for stem in CASES}
    assert layouts == {"grid", "segments"}
