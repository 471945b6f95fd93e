"""Training data for the learned stages, made once with nnc's real encoder and decoder, cached to disk.

    python -m codec.training.data [--data DIR] [--cache DIR] [--jobs 2] [--kinds jpeg,...] [--every K]

Photos (never Kodak): ``bsds500/`` JPEGs (q~90) box-downsampled 2x for clean targets, portraits of
``train/`` turned upright (ROTATED_TRAIN.tsv); ``extra/`` clean photos box-downsampled 2x more
(a second scale of photo detail), cropped to at most 640x480. One photo in 20 (by a
hash of its name) is held out for validation.

For every photo the cache holds one ``.npz`` per kind:
- ``codec/``: the original luma and nnc's decoded full-size luma (after decoder stages 1-3, before
  deblocking) at 4 qualities spread over 1..70, with the luma section's size and scale; made
  again when the newest release's stages before deblocking change (a new upscaler;
  ``stages_before_deblock``). Full-size luma keeps HEVC's loop filters.
- ``codec_unfiltered/``: the same, with full-size luma coded without HEVC's loop filters, as the
  encoder codes it for a deblocker that replaces them (``CODEC_KINDS``).
- ``codec_x1/``, ``codec_unfiltered_x1/``: the same, with the luma coded full size at 2 qualities
  in 10..25. There the encoder codes most training photos' luma at x2 or x4 (of ``codec/``'s
  samples at 11-25, 48 of 583 are full size), but smoother photos' at x1, where stage 4 runs.
- ``upscale/``: the original luma and, for the luma stream at scale 2 and at scale 4, the stream
  as decoded after HEVC coding at 4 x265 qualities spread over the range the encoder uses at
  those scales (``x2_decoded``, ``x2_luma_bytes``...): the input of stage 2. Coded without HEVC's
  loop filters (``loop_filters``: ``UPSCALE_LOOP_FILTERS``), as the encoder codes them for an
  upscaler trained on them.
- ``color/``: what stage 3 sees: for each ``codec/`` quality, the decoded full-size luma (after
  stage 2) and hints coded exactly as the encoder codes them (a grid thumbnail at each factor, at
  one of the x265 qualities the encoder tries there, and segment hints of a random density and
  quantisation on the decoded luma stream), each colorized by the classical baseline, with the
  colorizer's condition and the original Cb, Cr.
- ``jpeg/``: the original RGB and its decoding as JPEG (Pillow, 4:2:0) at 6 qualities in 5..95,
  with the quality estimated from the file's tables, as ``nnc restore`` does; made again when the
  bands change (``deblock_jpeg-v2`` learned from the first four alone).
Existing files that are up to date are kept, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .. import chroma, format, hevc
from ..color import rgb_to_ycbcr, to_uint8
from ..luma import encode_luma, luma_stream
from ..models import RELEASES
from ..pipeline import (
    GRID_FACTOR_LOG2_CHOICES,
    LUMA_SCALE_CHOICES,
    SEGMENT_QUANT_STEPS,
    SEGMENT_STEPS,
    ImageEncoder,
    luma_loop_filters,
    x265_qualities,
)
from ..restore import jpeg_quality
from ..stages import Stages

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "train"
DEFAULT_CACHE = Path.home() / ".cache" / "nnc" / "train"
MAX_SIZE = (640, 480)  # (width, height) of the largest crop kept from an extra photo
CODEC_QUALITY_BANDS = ((1, 10), (11, 25), (26, 45), (46, 70))
X1_QUALITY_BANDS = ((10, 16), (17, 25))  # the ``*_x1`` kinds: luma forced full size at these qualities
JPEG_QUALITY_BANDS = ((5, 12), (13, 25), (26, 37), (38, 50), (51, 75), (76, 95))
UPSCALE_X265_BANDS = ((0, 6), (7, 14), (15, 24), (25, 40))  # x265 qualities of x2/x4 streams at nnc qualities 1..30
UPSCALE_SCALES = (2, 4)
UPSCALE_LOOP_FILTERS = False  # the x2/x4 streams are coded without HEVC's loop filters (from upscale-v3 on)
CODEC_KINDS = {"codec": True, "codec_unfiltered": False,  # kind -> whether its full-size luma keeps the loop filters
               "codec_x1": True, "codec_unfiltered_x1": False}
VALIDATION_EVERY = 20
ENCODER_REVISION = 2  # raised when the encoder's luma choices change (2: x265 qualities on a lattice)


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def is_validation(name: str) -> bool:
    """Held out for validation: one photo in VALIDATION_EVERY, by a hash of its name."""
    return _seed(name) % VALIDATION_EVERY == 0


def _center_crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width < height:  # portrait: the same area, turned
        crop_width, crop_height = min(width, MAX_SIZE[1]), min(height, MAX_SIZE[0])
    else:
        crop_width, crop_height = min(width, MAX_SIZE[0]), min(height, MAX_SIZE[1])
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    return image.crop((left, top, left + crop_width, top + crop_height))


def training_photos(data: Path) -> list[tuple[str, Path, int, int]]:
    """(name, path, rot90 k, box-downsampling factor) for every training photo, in a fixed order."""
    rotated = {}
    rotation_list = data / "bsds500" / "ROTATED_TRAIN.tsv"
    for line in rotation_list.read_text().splitlines()[1:]:
        file_name, k = line.split("\t")
        rotated[file_name] = int(k)
    photos = []
    for path in sorted((data / "bsds500").glob("*/*.jpg")):
        k = rotated.get(path.name, 0) if path.parent.name == "train" else 0
        photos.append((f"bsds-{path.parent.name}-{path.stem}", path, k, 2))
    for path in sorted((data / "extra").glob("*.png")):
        photos.append((f"extra-{path.stem}-x2", path, 0, 2))
    if not photos:
        raise SystemExit(f"no training photos under {data}")
    return photos


def load_photo(path: Path, k: int, factor: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the photo turned upright, box-downsampled by ``factor``, cropped."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    if factor > 1:
        image = image.reduce(factor)
    pixels = np.rot90(np.asarray(_center_crop(image)), k)
    return np.ascontiguousarray(pixels)


def _qualities(name: str, bands: tuple[tuple[int, int], ...]) -> list[int]:
    rng = np.random.default_rng(_seed(name))
    return [int(rng.integers(low, high + 1)) for low, high in bands]


def stages_before_deblock(loop_filters: bool = True) -> str:
    """The learned networks of the newest release that make the luma stage 4 sees, the encoder's
    revision and, for full-size luma coded without HEVC's loop filters (``loop_filters`` False),
    that setting (e.g. "upscale=upscale-v3;encoder=2;x1_loop_filters=0"): a sample of a codec kind
    (``CODEC_KINDS``) or ``color`` made otherwise is out of date."""
    networks = ",".join(f"{stage}={key}" for stage, key in sorted(RELEASES[-1].items())
                        if stage == "upscale")
    return f"{networks};encoder={ENCODER_REVISION}" + ("" if loop_filters else ";x1_loop_filters=0")


def codec_sample(pixels: np.ndarray, qualities: list[int], loop_filters: bool = True,
                 scales: tuple[int, ...] = LUMA_SCALE_CHOICES) -> dict[str, np.ndarray]:
    """The luma the deblocker sees: nnc's decoded full-size luma at each quality, before stage 4
    (after the newest release's stage 2), with what made it (``pipeline``); loop_filters: whether
    luma coded full size keeps HEVC's loop filters; scales: the luma scales the encoder may choose."""
    encoder = ImageEncoder(pixels, stages=Stages(frozenset({"deblock"})),  # the stage being trained is off
                           full_size_loop_filters=loop_filters)
    decoded, luma_bytes, chosen_scales, x265 = [], [], [], []
    for quality in qualities:
        choice = encoder.choose_luma(quality, scales)
        decoded.append(encoder.upscaled_luma(choice))
        luma_bytes.append(len(choice.payload))
        chosen_scales.append(choice.scale)
        x265.append(choice.quality)
    return {"original": to_uint8(encoder.luma_plane), "decoded": np.stack(decoded),
            "quality": np.array(qualities), "luma_bytes": np.array(luma_bytes), "scale": np.array(chosen_scales),
            "x265_quality": np.array(x265), "pipeline": np.array(stages_before_deblock(loop_filters))}


def color_sample(pixels: np.ndarray, codec: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """What stage 3 sees, for each quality of the photo's ``codec`` sample (see the module docstring).

    classical: (N, 2, H, W) uint8 Cb, Cr; condition: (N, 3) float32; luma_index: (N,) the row of
    ``luma`` ((Q, H, W) uint8) each variant goes with."""
    rng = np.random.default_rng(seed)
    luma, cb, cr = rgb_to_ycbcr(pixels)
    height, width = luma.shape
    classical, conditions, luma_index, layouts = [], [], [], []
    for index, quality in enumerate(codec["quality"].tolist()):
        scale, luma_bytes = int(codec["scale"][index]), int(codec["luma_bytes"][index])
        candidates = [chroma.encode_grid_hints(cb, cr, factor_log2,
                                               int(rng.choice(x265_qualities(quality, factor_log2, large=False))))
                      for factor_log2 in GRID_FACTOR_LOG2_CHOICES]
        filters = luma_loop_filters(scale, RELEASES[-1], Stages()) if scale > 1 else CODEC_KINDS["codec"]
        chosen = encode_luma(luma, scale, int(codec["x265_quality"][index]),  # the luma stream the encoder chose
                             loop_filters=filters)
        if len(chosen.payload) != luma_bytes:
            raise ValueError("the codec sample was made by another encoder: remake the cache")
        step = max(2, round(int(rng.choice(SEGMENT_STEPS)) / scale))
        quant_step = int(rng.choice(SEGMENT_QUANT_STEPS))
        candidates.append(chroma.encode_segment_hints(cb, cr, chosen.stream, step, quant_step))
        for candidate in candidates:
            classical.append(np.stack(chroma.classical_colorize(candidate.hints, height, width)))
            conditions.append(chroma.colorize_condition(candidate.hints, height, width))
            luma_index.append(index)
            layouts.append(candidate.layout)
    return {"original": np.stack([to_uint8(cb), to_uint8(cr)]), "luma": codec["decoded"],
            "quality": codec["quality"], "classical": np.stack(classical),
            "condition": np.array(conditions, np.float32), "luma_index": np.array(luma_index),
            "layout": np.array(layouts), "pipeline": np.array(stages_before_deblock())}


def up_to_date(kind: str, path: Path) -> bool:
    """Whether the cached sample of ``kind`` at ``path`` exists and was made as this code makes it
    (``upscale``: streams with the loop-filter setting of ``UPSCALE_LOOP_FILTERS``; the codec kinds
    of ``CODEC_KINDS`` and ``color``: by the newest release's stages before stage 4 with the
    kind's loop-filter setting, ``stages_before_deblock``; ``jpeg``: at the qualities of
    ``JPEG_QUALITY_BANDS``)."""
    if not path.exists():
        return False
    if kind == "upscale":
        with np.load(path) as sample:  # made before the streams lost their loop filters: with them
            return bool(sample["loop_filters"]) == UPSCALE_LOOP_FILTERS if "loop_filters" in sample else \
                UPSCALE_LOOP_FILTERS
    if kind == "jpeg":  # made with other quality bands
        with np.load(path) as sample:
            return sample["quality"].tolist() == _qualities(f"jpeg/{path.stem}", JPEG_QUALITY_BANDS)
    if kind not in (*CODEC_KINDS, "color"):
        return True
    expected = stages_before_deblock(CODEC_KINDS.get(kind, True))
    with np.load(path) as sample:  # files made before stage 2 was learned have no "pipeline": bicubic
        return str(sample["pipeline"]) == expected if "pipeline" in sample else expected == ""


def upscale_sample(pixels: np.ndarray, qualities: list[int]) -> dict[str, np.ndarray]:
    """What stage 2 sees: the luma stream at each scale, decoded after coding at each x265 quality."""
    original = rgb_to_ycbcr(pixels)[0]
    sample = {"original": to_uint8(original), "x265_quality": np.array(qualities),
              "loop_filters": np.array(UPSCALE_LOOP_FILTERS)}
    for scale in UPSCALE_SCALES:
        stream = luma_stream(original, scale)
        decoded, luma_bytes = [], []
        for quality in qualities:
            tiles = hevc.encode_plane(stream, quality, UPSCALE_LOOP_FILTERS)
            decoded.append(hevc.decode_plane(tiles, *stream.shape))
            luma_bytes.append(len(format.build_hevc_plane(tiles)))
        sample.update({f"x{scale}_decoded": np.stack(decoded),
                       f"x{scale}_luma_bytes": np.array(luma_bytes)})
    return sample


def jpeg_sample(pixels: np.ndarray, qualities: list[int]) -> dict[str, np.ndarray]:
    """The photo through Pillow's JPEG (4:2:0) at each quality, with the quality read back from its tables."""
    decoded, estimated = [], []
    for quality in qualities:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=2)
        with Image.open(buffer) as jpeg:
            estimated.append(jpeg_quality(jpeg.quantization[0]))
            decoded.append(np.asarray(jpeg.convert("RGB")))
    return {"original": pixels, "decoded": np.stack(decoded), "quality": np.array(qualities),
            "estimated_quality": np.array(estimated)}


SAMPLE_MAKERS = {"codec": (codec_sample, CODEC_QUALITY_BANDS),
                 "codec_unfiltered": (functools.partial(codec_sample, loop_filters=False), CODEC_QUALITY_BANDS),
                 "codec_x1": (functools.partial(codec_sample, scales=(1,)), X1_QUALITY_BANDS),
                 "codec_unfiltered_x1": (functools.partial(codec_sample, loop_filters=False, scales=(1,)),
                                         X1_QUALITY_BANDS),
                 "jpeg": (jpeg_sample, JPEG_QUALITY_BANDS), "upscale": (upscale_sample, UPSCALE_X265_BANDS)}
KINDS = (*SAMPLE_MAKERS, "color")  # made in this order: a color sample is made from the codec one


def _make(item: tuple[str, Path, int, int], cache: Path, kinds: tuple[str, ...] = KINDS) -> str:
    name, path, k, factor = item
    split = "val" if is_validation(name) else "train"
    pixels = None
    for kind in (known for known in KINDS if known in kinds):
        target = cache / kind / split / f"{name}.npz"
        if up_to_date(kind, target):
            continue
        pixels = load_photo(path, k, factor) if pixels is None else pixels
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".tmp.npz")
        if kind == "color":  # made from the photo's codec sample (made first), compressed: 16 variants
            with np.load(cache / "codec" / split / f"{name}.npz") as codec:
                np.savez_compressed(partial, **color_sample(pixels, dict(codec), _seed(f"color/{name}")))
        else:
            make, bands = SAMPLE_MAKERS[kind]
            np.savez(partial, **make(pixels, _qualities(f"{kind}/{name}", bands)))
        partial.replace(target)
    return name


def build_cache(data: Path, cache: Path, jobs: int = 2, kinds: tuple[str, ...] = KINDS, every: int = 1) -> None:
    """Make every missing cache file of ``kinds`` (and of ``codec``, which ``color`` is made from) for
    every ``every``-th training photo (in the fixed order of ``training_photos``); prints progress."""
    if "color" in kinds and "codec" not in kinds:
        kinds += ("codec",)
    photos = training_photos(data)[::every]
    with ProcessPoolExecutor(jobs) as pool:
        for done, name in enumerate(pool.map(_make, photos, [cache] * len(photos), [kinds] * len(photos)), 1):
            print(f"\r[{done}/{len(photos)}] {name:60.60s}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Command line: build the training cache."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared training photos")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the cached samples go")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated kinds of sample to make (default: all, {','.join(KINDS)})")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="only every K-th photo (a spread subset, for kinds that take hours to make)")
    args = parser.parse_args(argv)
    kinds = tuple(args.kinds.split(","))
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kind {', '.join(unknown)}: choose from {', '.join(KINDS)}")
    if args.every < 1:
        parser.error("--every must be at least 1")
    build_cache(args.data, args.cache, args.jobs, kinds, args.every)


if __name__ == "__main__":
    main()
