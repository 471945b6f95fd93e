"""Decoding is bit-exact and never breaks: shipped files of every model version decode to recorded digests.

Files of an older model version are never regenerated. With NNC_REGEN_GOLDEN=1, the cases of the
newest model version (and only those) are encoded anew and their digests recorded.
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
from codec.models import COLORIZE_FINE, DEBLOCK_UNFILTERED, REGISTRY, RELEASES
from codec.weights import model_version, release_version
from conftest import SAMPLE_PHOTO

GOLDEN = Path(__file__).parent / "data" / "golden"
# file stem -> (quality it was encoded at, model version it was written with)
CASES = {
    "photo_grid": (20, "e3b0c442"),
    "photo_segments": (1, "e3b0c442"),
    "photo_grid_deblock1": (20, release_version(RELEASES[1]).hex()),
    "photo_segments_deblock1": (1, release_version(RELEASES[1]).hex()),
    "photo_grid_upscale1": (20, release_version(RELEASES[2]).hex()),
    "photo_segments_upscale1": (1, release_version(RELEASES[2]).hex()),
    "photo_grid_colorize1": (25, release_version(RELEASES[3]).hex()),
    "photo_segments_colorize1": (1, release_version(RELEASES[3]).hex()),
    "photo_fullchroma_colorize1": (70, release_version(RELEASES[3]).hex()),  # format 0.4: Cb, Cr at full size
    "photo_grid_deblock2": (30, release_version(RELEASES[4]).hex()),  # format 1.0: a deblock level in the header
    "photo_segments_deblock2": (1, release_version(RELEASES[4]).hex()),
    "photo_grid_colorize2": (55, release_version(RELEASES[5]).hex()),  # full-size luma: stage 4 on
    "photo_segments_colorize2": (1, release_version(RELEASES[5]).hex()),
    "photo_grid_upscale2": (55, release_version(RELEASES[6]).hex()),
    "photo_segments_upscale2": (1, release_version(RELEASES[6]).hex()),
    "photo_x4_upscale2": (1, release_version(RELEASES[6]).hex()),  # 256x192: luma at x4
    "photo_grid_deblock3": (55, release_version(RELEASES[7]).hex()),
    "photo_segments_deblock3": (1, release_version(RELEASES[7]).hex()),
    "photo_x4_deblock3": (1, release_version(RELEASES[7]).hex()),
    "photo_grid_upscale3": (55, release_version(RELEASES[8]).hex()),  # format 1.1
    "photo_segments_upscale3": (1, release_version(RELEASES[8]).hex()),
    "photo_x4_upscale3": (1, release_version(RELEASES[8]).hex()),  # x4 luma without HEVC's loop filters
    "photo_grid_deblock6": (55, release_version(RELEASES[9]).hex()),
    "photo_segments_deblock6": (1, release_version(RELEASES[9]).hex()),
    "photo_x4_deblock6": (1, release_version(RELEASES[9]).hex()),
    "photo_odd_deblock6": (55, release_version(RELEASES[9]).hex()),  # 191x127: stage 4 pads to even sides
    "photo_grid_deblock7": (55, release_version(RELEASES[10]).hex()),  # x1 luma without loop filters: deblock-v7
    "photo_filtered_deblock7": (45, release_version(RELEASES[10]).hex()),  # x1 luma with them: deblock-v6
    "photo_segments_deblock7": (1, release_version(RELEASES[10]).hex()),
    "photo_x4_deblock7": (1, release_version(RELEASES[10]).hex()),
    "photo_odd_deblock7": (55, release_version(RELEASES[10]).hex()),
    # format 2.0: a color strength in the header
    "photo_grid_colorfine1": (40, release_version(RELEASES[11]).hex()),  # hints at 1/2: colorize_fine-v1
    "photo_unfiltered_colorfine1": (55, release_version(RELEASES[11]).hex()),  # x1 luma without loop filters
    "photo_segments_colorfine1": (1, release_version(RELEASES[11]).hex()),  # strengths above 8
    "photo_x4_colorfine1": (1, release_version(RELEASES[11]).hex()),
    "photo_odd_colorfine1": (35, release_version(RELEASES[11]).hex()),  # 191x127: the fine colorizer pads
    "photo_grid_deblock8": (40, release_version(RELEASES[12]).hex()),
    "photo_unfiltered_deblock8": (55, release_version(RELEASES[12]).hex()),  # x1 luma without loop filters: v8
    "photo_segments_deblock8": (1, release_version(RELEASES[12]).hex()),
    "photo_x4_deblock8": (1, release_version(RELEASES[12]).hex()),
    "photo_odd_deblock8": (40, release_version(RELEASES[12]).hex()),  # 191x127 x1 without loop filters: v8 pads
    "photo_grid_deblock9": (40, release_version(RELEASES[13]).hex()),  # x1 luma with loop filters: deblock-v9
    "photo_unfiltered_deblock9": (55, release_version(RELEASES[13]).hex()),  # x1 luma without them: deblock-v8
    "photo_segments_deblock9": (1, release_version(RELEASES[13]).hex()),
    "photo_x4_deblock9": (1, release_version(RELEASES[13]).hex()),
    "photo_odd_deblock9": (40, release_version(RELEASES[13]).hex()),  # 191x127 x1 with loop filters: v9 pads
}
# file stem -> the box of the sample photo it encodes, where not the default 192x128 corner
BOXES = {"photo_x4_upscale2": (0, 0, 256, 192), "photo_x4_deblock3": (0, 0, 256, 192),
         "photo_x4_upscale3": (0, 0, 256, 192), "photo_x4_deblock6": (0, 0, 256, 192),
         "photo_odd_deblock6": (0, 0, 191, 127), "photo_x4_deblock7": (0, 0, 256, 192),
         "photo_odd_deblock7": (0, 0, 191, 127), "photo_x4_colorfine1": (0, 0, 256, 192),
         "photo_odd_colorfine1": (0, 0, 191, 127), "photo_x4_deblock8": (0, 0, 256, 192),
         "photo_odd_deblock8": (0, 0, 191, 127), "photo_x4_deblock9": (0, 0, 256, 192),
         "photo_odd_deblock9": (0, 0, 191, 127)}


def _source(stem: str) -> Image.Image:
    with Image.open(SAMPLE_PHOTO) as image:
        return image.convert("RGB").crop(BOXES.get(stem, (0, 0, 192, 128)))


def _digest(image: Image.Image) -> str:
    return hashlib.sha256(np.asarray(image).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def digests() -> dict:
    """The recorded digests; with NNC_REGEN_GOLDEN=1, first re-encode the newest version's files."""
    recorded = json.loads((GOLDEN / "digests.json").read_text())
    if os.environ.get("NNC_REGEN_GOLDEN"):
        for stem, (quality, version) in CASES.items():
            if version == model_version().hex():
                data = codec.encode(_source(stem), quality=quality)
                (GOLDEN / f"{stem}.nnc").write_bytes(data)
                recorded[stem] = _digest(codec.decode(data))
        (GOLDEN / "digests.json").write_text(json.dumps(recorded, indent=1) + "\n")
    return recorded


@pytest.mark.parametrize("stem", CASES)
def test_golden_file_decodes_to_the_recorded_pixels(stem, digests):
    data = (GOLDEN / f"{stem}.nnc").read_bytes()
    fields = codec.info(data)
    assert fields["model_version"] == CASES[stem][1]
    release = next(release for release in RELEASES if release_version(release).hex() == CASES[stem][1])
    assert {key for key in REGISTRY if key in fields["decoder_models"]} == set(release.values())
    assert _digest(codec.decode(data)) == digests[stem]


def test_the_full_size_chroma_golden_file_holds_full_size_chroma():
    """Format 0.4's grid hints at factor 1 stay pinned, whatever a regeneration chooses."""
    container = codec.format.parse_container((GOLDEN / "photo_fullchroma_colorize1.nnc").read_bytes())
    assert codec.chroma.read_grid_hints(container.sections["hints"], container.height, container.width).factor == 1


def _grid_factor(stem: str) -> int:
    """The thumbnail factor of a golden file's grid hints."""
    container = codec.format.parse_container((GOLDEN / f"{stem}.nnc").read_bytes())
    return codec.chroma.read_grid_hints(container.sections["hints"], container.height, container.width).factor


def test_every_model_version_has_golden_files_of_both_hint_layouts():
    for release in RELEASES:
        version = release_version(release).hex()
        stems = [stem for stem, (_, case_version) in CASES.items() if case_version == version]
        infos = [codec.info((GOLDEN / f"{stem}.nnc").read_bytes()) for stem in stems]
        assert {info["hint_layout"] for info in infos} == {"grid", "segments"}, version
        if "color" in release:  # the colorizer's own output is pinned, not only the classical one
            assert not all(info["classical_color"] for info in infos), version
        if "upscale" in release:  # the upscaler's own output is pinned: a luma stream at reduced size
            assert any(info["luma_scale"] != 1 for info in infos), version
            if release["upscale"] != "upscale-v1":  # and both of its nets (upscale-v1's x4 predates this rule)
                assert {info["luma_scale"] for info in infos} >= {2, 4}, version
        if "deblock" in release:  # the deblocker's own output is pinned, not only level 0's identity
            assert any(info["deblock_level"] != 0 and info["luma_loop_filters"] for info in infos), version
        if DEBLOCK_UNFILTERED in release:  # and that of its deblocker for luma coded without loop filters
            assert any(info["deblock_level"] != 0 and not info["luma_loop_filters"] for info in infos), version
        if COLORIZE_FINE in release:  # and that of its colorizer for thumbnails at 1/2, at a strength of its own
            fine = [stem for stem, info in zip(stems, infos) if info["hint_layout"] == "grid" and
                    not info["classical_color"] and _grid_factor(stem) == 2]
            assert fine and any(codec.info((GOLDEN / f"{stem}.nnc").read_bytes())["color_strength"] != (8, 8)
                                for stem in fine), version
