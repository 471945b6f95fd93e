"""Composes the stages on arrays and bytes; no file I/O.

Encoder: RGB -> Y, Cb, Cr; the luma stream (stage 1) and the color hints (stage 3 input) are each
chosen among candidates by rate-distortion: the candidate with the least D + lambda * R wins, with
D the squared error it leaves in RGB (luma error counts once, Cb 1.086x, Cr 0.825x: BT.601's
weights of each channel's error in the RGB mean squared error) and R its bits.
Decoder: luma stream -> upscale (stage 2) -> colorize from hints (stage 3) -> deblock (stage 4).
The encoder judges its last candidates by what that decoder outputs (analysis by synthesis).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from . import chroma, format, luma
from .color import rgb_to_ycbcr, to_uint8, upsample_bicubic, ycbcr_to_rgb
from .deblock import apply_deblock, deblock_level, level_fits
from .errors import FormatError
from .metrics import psnr, squared_error
from .models import COLORIZE_FINE, DEBLOCK_UNFILTERED, REGISTRY, RELEASES
from .runtime import run_side_by_side
from .segmentation import segment_luma
from .stages import Stages
from .upscale import apply_upscale
from .weights import model_version, release_models

QUALITY_RANGE = (1, 100)
LUMA_FINALISTS = 2  # luma candidates (best after stage 2) of each scale and loop-filter setting judged on the
                    # decoder's real output (stage 4 too): luma coded without the filters ranks below what
                    # stage 4 makes of it (one candidate on large images: the error after stage 2 decides).
                    # 3 up to nnc 0.17.0: on 182 encodes of 31 training photos at qualities 10-70 the third
                    # won once (the second 9 times), for up to two more stage-4 runs an encode
CB_WEIGHT, CR_WEIGHT = 1.086, 0.825
LUMA_SCALE_CHOICES = (1, 2, 4)
GRID_FACTOR_LOG2_CHOICES = (1, 2, 3)  # thumbnails at 1/2, 1/4, 1/8 (what the colorizer refines)
FULL_CHROMA_MIN_QUALITY = 50  # from this quality on, full-size Cb | Cr (factor_log2 0) is a candidate too
SEGMENT_STEPS = (16, 24, 32, 48)  # seed spacing in full-size pixels
SEGMENT_QUANT_STEPS = (4, 8)
X265_WINDOW = 6  # x265 qualities tried: within this of the one expected to match lambda...
X265_LATTICE = 4  # ...and multiples of this: 3 per option, the same ones at neighbouring qualities
LARGE_IMAGE_PIXELS = 4_000_000  # above this, one x265 quality per option (encode time)
DEBLOCK_MIN_GAIN = 0.005  # stage 4 is turned on for a file only if it removes this share of the luma's
                          # squared error (0.02 dB): a smaller gain is not worth its decode time
DEBLOCK_MAX_GAIN = 0.5  # the encoder spares stage 4's run on a luma candidate that could not win even if the
                        # network removed this share of its squared error (3 dB; held out it removes 7 %)
UPSCALE_MAX_GAIN = 0.5  # the encoder spares stage 2's run on an x2/x4 luma candidate that could not win even if
                        # the network removed this share of bicubic's squared error (3 dB; on the training
                        # photos' decoded streams it removes 8 % on average, at most 27 % held out)
COLOR_MAX_GAIN = 0.8  # the encoder spares stage 3's run on hints whose learned colorization could not win even
                      # if the network removed this share of the classical one's squared error in each plane
                      # (7 dB; on the training set's hints 13-24 % on average, at most 58 % on held-out photos
                      # and 76 % on photos it was trained on: close to the bound, where a choice could change)
DEBLOCK_LEVEL_STEP = 8  # the encoder's search for the file's deblock level: steps of 2 dB from the measured one...
DEBLOCK_LEVEL_REACH = 32  # ...up to 8 dB either side, then half a step either side of the best
CODING_THREADS = 2  # x265 candidates the encoder codes at once: on 2 cores x265 leaves room beside one picture
                    # of nnc's sizes (kodim05 at quality 45: 8.4 s against 9.5 in turn); more cores, more x265 threads
DEBLOCK_SCALES = (1,)  # luma scales the encoder tries stage 4 at. Kodak, 10 images at qualities 5, 10, 16
                       # with it tried at every scale: no x2/x4 luma chosen got a level, no choice changed,
                       # and 71 of 84 full-size network runs were on x2/x4 finalists (about 2 s an encode)


def equivalent_crf(quality: int) -> float:
    """The x265 CRF that full-size luma gets at ``quality``: 60 at quality 1 down to 0 at 100.

    CRF beyond 51 is out of x265's range: only downsampled luma reaches it (see x265_qualities),
    which is how the lowest qualities reach below 0.04 bpp."""
    return 60.0 * (QUALITY_RANGE[1] - quality) / (QUALITY_RANGE[1] - QUALITY_RANGE[0])


def lagrange_multiplier(quality: int) -> float:
    """Lambda (squared luma error per bit) for ``quality``: HEVC's intra lambda 0.57 * 2**((QP - 12) / 3)
    at the QP x265 reaches on one intra picture at the equivalent CRF (about CRF - 3)."""
    return 0.57 * 2 ** ((equivalent_crf(quality) - 3 - 12) / 3)


def x265_qualities(quality: int, downsampling_log2: int, large: bool) -> list[int]:
    """x265 qualities (CRF = (100 - quality) / 2) to try for a plane downsampled by 2**downsampling_log2:
    the multiples of X265_LATTICE in [base - X265_WINDOW, base + X265_WINDOW), clipped to 0..100, with
    base the one expected to match lambda (one, rounded, on large images).

    Each halving spreads a sample's error over 4 pixels: the matching QP is 6 lower. The candidates
    sit on a fixed lattice, so a higher quality only drops the lowest and adds higher ones: with
    lambda falling as quality rises, the choice (and the file size) rarely falls back (it still can
    when a dropped candidate was chosen; checked on a photo in tests/test_pipeline.py)."""
    base = 100 - 2 * (equivalent_crf(quality) - 6 * downsampling_log2)
    if large:
        return [int(np.clip(round(base), 0, 100))]
    first = X265_LATTICE * math.ceil((base - X265_WINDOW) / X265_LATTICE)
    return sorted({int(np.clip(value, 0, 100)) for value in range(first, math.ceil(base + X265_WINDOW), X265_LATTICE)})


@dataclass
class EncodeReport:
    """What the encoder chose for one image, and what it costs."""

    quality: int
    bytes: int
    luma_scale: int
    luma_quality: int
    hint_layout: str
    hint_params: dict = field(default_factory=dict)
    section_bytes: dict = field(default_factory=dict)
    psnr: float = 0.0  # dB over all samples (RGB, or gray), of the decoded image against the input
    luma_loop_filters: bool = True  # whether the luma stream was coded with HEVC's loop filters


def luma_loop_filters(scale: int, release: dict[str, str], stages: Stages) -> bool:
    """Whether the encoder codes luma at ``scale`` with HEVC's loop filters (deblocking, SAO): yes,
    unless the decoder stage that may replace them (stage 2 for x2/x4, stage 4 for full size)
    runs a network of ``release`` trained on luma without them (``ModelSpec.loop_filters``)."""
    stage = "upscale" if scale > 1 else "deblock"
    learned = stage not in stages.baseline and stage in release
    return not learned or REGISTRY[release[stage]].loop_filters


def luma_loop_filter_choices(scale: int, release: dict[str, str], stages: Stages) -> tuple[bool, ...]:
    """The loop-filter settings the encoder codes luma at ``scale`` with, to keep the better: for
    full-size luma both, where ``release`` has a deblocker for luma coded without them
    (DEBLOCK_UNFILTERED) and stage 4 runs learned; else the one ``luma_loop_filters`` says."""
    if scale == 1 and "deblock" not in stages.baseline and DEBLOCK_UNFILTERED in release:
        return True, False
    return (luma_loop_filters(scale, release, stages),)


def deblock_entry(release: dict[str, str], scale: int, loop_filtered: Callable[[], bool]) -> str:
    """The entry of ``release`` whose network stage 4 runs on luma coded at ``scale``:
    DEBLOCK_UNFILTERED for full-size luma coded without HEVC's loop filters (``loop_filtered()``,
    asked only then), if the release has one; else "deblock"."""
    if DEBLOCK_UNFILTERED in release and scale == 1 and not loop_filtered():
        return DEBLOCK_UNFILTERED
    return "deblock"


def color_entry(release: dict[str, str], hints: chroma.Hints) -> str:
    """The entry of ``release`` whose network stage 3 runs on ``hints``: COLORIZE_FINE for a grid
    thumbnail at 1/2, if the release has one; else "color"."""
    if COLORIZE_FINE in release and hints.layout == "grid" and hints.factor == 2:
        return COLORIZE_FINE
    return "color"


class ImageEncoder:
    """Encodes one image at any quality; remembers coded candidates, so a search over quality
    (``--target-size``) codes each luma candidate (scale, x265 quality, loop filters) or hint option once."""

    def __init__(self, pixels: np.ndarray, icc_profile: bytes = b"", exif: bytes = b"",
                 stages: Stages | None = None, progress: Callable[[str], None] | None = None,
                 full_size_loop_filters: bool | None = None) -> None:
        """pixels: (H, W, 3) uint8 RGB, or (H, W) uint8 grayscale (stored without hints).
        icc_profile, exif: metadata to keep in the file (empty: none). stages: the decoder stages
        to judge candidates by (default: every learned stage of the newest release). progress: told
        of each candidate coded and each network run, in lines like "quality 30: coding luma x2 at
        x265 quality 44" (long encodes show what they do). full_size_loop_filters: whether luma
        coded at x1 keeps HEVC's loop filters (None: as ``luma_loop_filter_choices`` says; the
        training data of a deblocker sets True or False, with stage 4 off)."""
        self.pixels = pixels
        self.full_size_loop_filters = full_size_loop_filters
        self._progress = progress or (lambda message: None)
        self._quality = 0  # the quality being encoded, for progress lines
        self.stages = dataclasses.replace(stages or Stages(), look="fidelity")  # the reference rendering
        self.release = RELEASES[-1]
        self.metadata = format.build_metadata(icc_profile, exif) if icc_profile or exif else b""
        self.height, self.width = pixels.shape[:2]
        self.is_gray = pixels.ndim == 2
        if self.is_gray:
            self.luma_plane, self.cb, self.cr = pixels.astype(np.float32), None, None
        else:
            self.luma_plane, self.cb, self.cr = rgb_to_ycbcr(pixels)
        self.large = self.height * self.width > LARGE_IMAGE_PIXELS
        self._luma_cache: dict = {}
        self._luma_errors: dict = {}  # (*candidate key, stage) -> squared luma error after that decoder stage
        self._bicubic_errors: dict = {}  # candidate key -> squared luma error of bicubic upscaling
        self._upscaled: dict = {}  # candidate key (LumaCandidate.key) -> stage-2 output
        self._deblocked: dict = {}  # candidate key -> (deblock level, stage-4 output) at the measured level
        self._tuned: dict = {}  # candidate key -> (deblock level, stage-4 output) once encode has tuned the level
        self._rounded_luma: np.ndarray | None = None
        self._hint_cache: dict = {}
        self._hint_errors: dict = {}
        self._learned_colors: dict = {}  # (hint key, *candidate key) -> learned stage-3 output
        self._segmentations: dict = {}
        self._downsampled: dict = {}  # planes to code, by ("luma", scale) or ("grid", factor_log2)

    def _downsampled_plane(self, kind: str, factor: int) -> np.ndarray:
        """The luma stream or grid thumbnail to code, downsampled once for all x265 qualities."""
        if (kind, factor) not in self._downsampled:
            self._downsampled[kind, factor] = (luma.luma_stream(self.luma_plane, factor) if kind == "luma"
                                               else chroma.grid_thumbnail(self.cb, self.cr, factor))
        return self._downsampled[kind, factor]

    def _luma(self, scale: int, quality: int, loop_filters: bool) -> luma.LumaCandidate:
        """The luma candidate (scale, x265 quality, loop filters), coded once (``_code_lumas``)."""
        self._code_lumas([(scale, quality, loop_filters)])
        return self._luma_cache[scale, quality, loop_filters]

    def _code_lumas(self, keys: list[tuple[int, int, bool]]) -> None:
        """Code the luma candidates of ``keys`` (scale, x265 quality, loop filters) not coded yet,
        side by side (``_side_by_side``)."""
        missing = [key for key in dict.fromkeys(keys) if key not in self._luma_cache]
        streams = {scale: self._downsampled_plane("luma", scale) for scale, _, _ in missing}  # made once, here

        def starting(index: int) -> None:
            scale, quality, loop_filters = missing[index]
            without = "" if loop_filters else " without loop filters"
            self._progress(f"quality {self._quality}: coding luma x{scale} at x265 quality {quality}{without}")

        self._luma_cache.update(zip(missing, self._side_by_side(
            [lambda key=key: luma.encode_luma(self.luma_plane, key[0], key[1], streams[key[0]], key[2])
             for key in missing], starting)))

    def _side_by_side(self, jobs: list[Callable[[], Any]], starting: Callable[[int], None]) -> list:
        """``run_side_by_side`` for x265 candidates: CODING_THREADS at a time (fewer if the stages'
        threads are fewer), or in turn on large images, whose tiles keep x265 busy on every core."""
        threads = 1 if self.large else min(CODING_THREADS, self.stages.threads or CODING_THREADS)
        return run_side_by_side(jobs, threads, starting)

    def _loop_filter_choices(self, scale: int) -> tuple[bool, ...]:
        """The loop-filter settings luma at ``scale`` is coded with (``luma_loop_filter_choices``);
        on large images only the first: their candidates are ranked after stage 2 alone, where luma
        without the filters always ranks below (encode time)."""
        if scale == 1 and self.full_size_loop_filters is not None:
            return (self.full_size_loop_filters,)
        choices = luma_loop_filter_choices(scale, self.release, self.stages)
        return choices[:1] if self.large else choices

    def choose_luma(self, quality: int, scales: tuple[int, ...] = LUMA_SCALE_CHOICES) -> luma.LumaCandidate:
        """The luma stream coded at ``quality`` (1..100) at one of ``scales`` (the training data of
        stage 4 keeps x1 alone at some qualities): the candidate of least D + lambda R, with D
        first measured after decoder stage 2 (the upscaler the decoder runs; not run on x2/x4
        candidates that cannot win, ``_upscalings_that_could_win``), then, for the best
        LUMA_FINALISTS of each scale and loop-filter setting, after stage 4 too: the decoder's real
        output at the measured deblock level, which ``encode`` then tunes for the chosen one (not
        run where DEBLOCK_MAX_GAIN says the candidate cannot win)."""
        lam = lagrange_multiplier(quality)
        keys = [(scale, x265_quality, filters)
                for scale in scales if min(self.height, self.width) >= scale
                for filters in self._loop_filter_choices(scale)
                for x265_quality in x265_qualities(quality, scale.bit_length() - 1, self.large)]
        self._code_lumas(keys)
        candidates = [self._luma_cache[key] for key in keys]
        if not candidates:
            raise ValueError(f"no luma scale of {scales} fits a {self.width}x{self.height} image")
        ranked = sorted(self._upscalings_that_could_win(candidates, lam),
                        key=lambda c: self._luma_error(c, stage=2) + lam * c.bits)
        if self.large:
            return ranked[0]
        counts: dict[tuple[int, bool], int] = {}
        best, best_cost = ranked[0], math.inf
        for candidate in ranked:  # the finalists, by their cost after stage 2
            group = (candidate.scale, candidate.loop_filters)
            counts[group] = counts.get(group, 0) + 1
            if counts[group] > LUMA_FINALISTS or (
                    (1 - DEBLOCK_MAX_GAIN) * self._luma_error(candidate, stage=2) + lam * candidate.bits >= best_cost):
                continue  # not a finalist, or stage 4 cannot bring it below the best (its run is spared)
            cost = self._luma_error(candidate, stage=4) + lam * candidate.bits
            if cost < best_cost:
                best, best_cost = candidate, cost
        return best

    def _upscalings_that_could_win(self, candidates: list[luma.LumaCandidate], lam: float) -> list[luma.LumaCandidate]:
        """``candidates`` (in their order) less the x2/x4 ones that could not win even if decoder
        stage 2 removed UPSCALE_MAX_GAIN of bicubic's squared error: their cost would stay above the
        full-size candidates' least cost after stage 2 (stage 4 only lowers that). Their network
        is not run (encode time); the choice is the same while the network keeps within that
        share. Candidates at a scale stage 4 runs at (DEBLOCK_SCALES) are all kept: their cost may
        fall below their cost after stage 2."""
        bound = min((self._luma_error(c, stage=2) + lam * c.bits for c in candidates if c.scale == 1), default=math.inf)

        def could_win(candidate: luma.LumaCandidate) -> bool:
            exact = self._luma_errors.get((*candidate.key, 2))  # already upscaled (--target-size)
            error = exact if exact is not None else (1 - UPSCALE_MAX_GAIN) * self._bicubic_error(candidate)
            return error + lam * candidate.bits < bound

        return [c for c in candidates if c.scale == 1 or c.scale in DEBLOCK_SCALES or could_win(c)]

    def _bicubic_error(self, candidate: luma.LumaCandidate) -> float:
        """Squared error of ``candidate``'s luma upscaled bicubically, the baseline of stage 2 (kept)."""
        if candidate.key not in self._bicubic_errors:
            bicubic = upsample_bicubic(candidate.stream, self.height, self.width)
            self._bicubic_errors[candidate.key] = squared_error(self.luma_plane, bicubic)
        return self._bicubic_errors[candidate.key]

    def upscaled_luma(self, candidate: luma.LumaCandidate) -> np.ndarray:
        """(H, W) uint8: the luma decoder stage 2 outputs for ``candidate`` (kept; on large images only the latest)."""
        key = candidate.key
        if key in self._upscaled:
            return self._upscaled[key]
        self._progress(f"quality {self._quality}: upscaling luma {candidate.label}")
        upscaled = apply_upscale(candidate.stream, self.height, self.width, candidate.scale, len(candidate.payload),
                                 lambda: self.stages.network("upscale", self.release), self.stages.threads)
        if self.large:
            self._upscaled.clear()  # only the latest: the chosen candidate's, needed again for its hints
        self._upscaled[key] = upscaled
        return upscaled

    def decoded_luma(self, candidate: luma.LumaCandidate) -> np.ndarray:
        """(H, W) uint8: the luma the decoder outputs for ``candidate`` (stages 2 and 4) at its
        ``chosen_deblock_level``."""
        return self._final_stage4(candidate)[1]

    def chosen_deblock_level(self, candidate: luma.LumaCandidate) -> int:
        """The file's deblock level for ``candidate`` (spec 3.1): 0 where stage 4 would not bring
        the luma closer to the source, for luma coded at a scale not in DEBLOCK_SCALES, or if the
        release has no deblocker; else the PSNR in quarter dB of the luma stage 4 receives, or,
        once ``encode`` has tuned it (``_tune_deblock_level``), the level near it that serves the
        image best."""
        return self._final_stage4(candidate)[0]

    def _final_stage4(self, candidate: luma.LumaCandidate) -> tuple[int, np.ndarray]:
        """(deblock level, stage-4 output) the file of ``candidate`` gets: the tuned ones once
        ``_tune_deblock_level`` has run for it, else those at the measured level (``_stage4``)."""
        return self._tuned[candidate.key] if candidate.key in self._tuned else self._stage4(candidate)

    def _luma_uint8(self) -> np.ndarray:
        """(H, W) uint8: the source luma rounded, as the deblock level measures it (made once)."""
        if self._rounded_luma is None:
            self._rounded_luma = to_uint8(self.luma_plane)
        return self._rounded_luma

    def _deblocker(self, candidate: luma.LumaCandidate) -> nn.Module | None:
        """The release's stage-4 network for ``candidate``'s luma (by its scale and loop filters),
        or None where the stage runs its baseline."""
        return self.stages.network(deblock_entry(self.release, candidate.scale, lambda: candidate.loop_filters),
                                   self.release)

    def _stage4(self, candidate: luma.LumaCandidate) -> tuple[int, np.ndarray]:
        """(deblock level, (H, W) uint8 stage-4 output) for ``candidate`` at the measured level,
        chosen by analysis by synthesis: the PSNR of stage 4's input, or 0 unless the network's
        output is closer to the source than its input by DEBLOCK_MIN_GAIN, or for a luma scale not
        in DEBLOCK_SCALES (kept; on large images only the latest). ``_tune_deblock_level`` may
        find a better level for the file."""
        key = candidate.key
        if key not in self._deblocked:
            upscaled = self.upscaled_luma(candidate)
            network = self._deblocker(candidate) if candidate.scale in DEBLOCK_SCALES else None
            level, output = 0, upscaled
            if network is not None:
                self._progress(f"quality {self._quality}: deblocking luma {candidate.label}")
                measured = deblock_level(self._luma_uint8(), upscaled)
                filtered = apply_deblock(upscaled, len(candidate.payload), candidate.stream.size, candidate.scale,
                                         lambda: network, self.stages.threads, measured)
                if squared_error(self.luma_plane, filtered) < (1 - DEBLOCK_MIN_GAIN) * self._luma_error(candidate, 2):
                    level, output = measured, filtered
            if self.large:
                self._deblocked.clear()
            self._deblocked[key] = (level, output)
        return self._deblocked[key]

    def _tune_deblock_level(self, candidate: luma.LumaCandidate) -> None:
        """Find the deblock level (quarter dB) near the measured one whose stage-4 output is
        closest to the source, for the file of ``candidate`` (``chosen_deblock_level``). The level
        is the network's input: the PSNR the encoder measured (``_stage4``) tells it how much error
        to remove, and on some photos it removes too much or too little for that (on Kodak it
        mostly gains from a level 1-4 dB higher). A local search: from the measured level, steps of
        DEBLOCK_LEVEL_STEP up while the error falls, else down, within DEBLOCK_LEVEL_REACH of it;
        then half a step either side of the best. Once per candidate (the luma choice keeps
        ranking candidates at their measured level), not where stage 4 is off, nor on large images
        (encode time)."""
        level, output = self._stage4(candidate)
        if level == 0 or self.large or candidate.key in self._tuned:
            return
        upscaled = self.upscaled_luma(candidate)
        network = self._deblocker(candidate)
        self._progress(f"quality {self._quality}: choosing the deblock level")
        best = (self._luma_error(candidate, stage=4), level, output)
        tried = {level}

        def improves(new: int) -> bool:
            """Whether the output at level ``new`` (run unless tried) is closer to the source than the best so far."""
            nonlocal best
            if new in tried or not 1 <= new <= 255 or abs(new - level) > DEBLOCK_LEVEL_REACH:
                return False
            tried.add(new)
            filtered = apply_deblock(upscaled, len(candidate.payload), candidate.stream.size, candidate.scale,
                                     lambda: network, self.stages.threads, new)
            error = squared_error(self.luma_plane, filtered)
            if error >= best[0]:
                return False
            best = (error, new, filtered)
            return True

        for direction in (1, -1):
            if improves(level + direction * DEBLOCK_LEVEL_STEP):
                while improves(best[1] + direction * DEBLOCK_LEVEL_STEP):
                    pass
                break
        for offset in (DEBLOCK_LEVEL_STEP // 2, -(DEBLOCK_LEVEL_STEP // 2)):
            improves(best[1] + offset)
        self._tuned[candidate.key] = best[1:]

    def _colorizer(self, hints: chroma.Hints) -> nn.Module | None:
        """The network of decoder stage 3 the encoder judges ``hints`` by (None: the classical baseline)."""
        return self.stages.network(color_entry(self.release, hints), self.release)

    def _luma_error(self, candidate: luma.LumaCandidate, stage: int) -> float:
        """Squared error of the luma after decoder stage ``stage`` (2: upscaled; 4: the decoder's
        output at the measured deblock level, by which ``choose_luma`` ranks every candidate)."""
        key = (*candidate.key, stage)
        if key not in self._luma_errors:
            decoded = self.upscaled_luma(candidate) if stage == 2 else self._stage4(candidate)[1]
            self._luma_errors[key] = squared_error(self.luma_plane, decoded)
        return self._luma_errors[key]

    def _hint_candidates(self, quality: int, luma_choice: luma.LumaCandidate) -> list[tuple]:
        """The keys in ``_hint_cache`` of the hint candidates at ``quality``, coding each new one."""
        candidates = []
        full_size = (0,) if quality >= FULL_CHROMA_MIN_QUALITY else ()
        for factor_log2 in full_size + GRID_FACTOR_LOG2_CHOICES:
            candidates += [("grid", factor_log2, x265_quality)
                           for x265_quality in x265_qualities(quality, factor_log2, self.large)]
        missing = [key for key in candidates if key not in self._hint_cache]
        thumbnails = {factor_log2: self._downsampled_plane("grid", factor_log2) for _, factor_log2, _ in missing}

        def starting(index: int) -> None:
            _, factor_log2, x265_quality = missing[index]
            self._progress(f"quality {self._quality}: coding color at 1/{1 << factor_log2} size, "
                           f"x265 quality {x265_quality}")

        self._hint_cache.update(zip(missing, self._side_by_side(
            [lambda key=key: chroma.encode_grid_hints(self.cb, self.cr, key[1], key[2], thumbnails[key[1]])
             for key in missing], starting)))
        if self.large:
            return candidates
        for full_step in SEGMENT_STEPS:
            step = max(2, round(full_step / luma_choice.scale))
            segment_key = (*luma_choice.key, step)
            if segment_key not in self._segmentations:
                self._segmentations[segment_key] = segment_luma(luma_choice.stream, step)
            for quant_step in SEGMENT_QUANT_STEPS:
                key = ("segments", *segment_key, quant_step)
                if key not in self._hint_cache:
                    self._progress(f"quality {self._quality}: coding color hints of segments {step} px apart")
                    self._hint_cache[key] = chroma.encode_segment_hints(
                        self.cb, self.cr, luma_choice.stream, step, quant_step, self._segmentations[segment_key])
                candidates.append(key)
        return candidates

    def _colors(self, hint_key: tuple, classical: bool, luma_choice: luma.LumaCandidate) -> tuple[np.ndarray, ...]:
        """(Cb, Cr), each (H, W) uint8: decoder stage 3's output for a hint candidate on the stage-2
        output of ``luma_choice``, classical or learned at its best strength (``_learned``)."""
        if classical:
            return chroma.colorize(self.upscaled_luma(luma_choice), self._hint_cache[hint_key].hints)
        return self._learned(hint_key, luma_choice)[1]

    def _learned(self, hint_key: tuple, luma_choice: luma.LumaCandidate) -> tuple[tuple[int, int], tuple]:
        """(color_strength, (Cb, Cr)) of the learned stage 3 on a hint candidate: the network's
        correction scaled per plane by the share that brings it closest to the source
        (``chroma.best_colors``; every strength costs the same byte). Kept (on large images only the latest:
        the chosen one is composed into the report without running the network again)."""
        key = (hint_key, *luma_choice.key)
        if key not in self._learned_colors:
            hints = self._hint_cache[hint_key].hints
            self._progress(f"quality {self._quality}: colorizing ({self._hint_cache[hint_key].layout} hints)")
            if self.large:
                self._learned_colors.clear()
            upscaled = self.upscaled_luma(luma_choice)
            classical = chroma.colorize(upscaled, hints)
            model = self._colorizer(hints)
            condition = chroma.colorize_condition(hints, *upscaled.shape)  # refuses full-size hints (no network)
            output = chroma.network_colors(model, upscaled, classical, condition, self.stages.threads)
            self._learned_colors[key] = chroma.best_colors(output, classical, (self.cb, self.cr),
                                                           keep_mean=model.keep_mean)
        return self._learned_colors[key]

    def _chroma_cost(self, hint_key: tuple, classical: bool, luma_choice: luma.LumaCandidate, lam: float) -> float:
        """D + lambda R of a hint candidate, D measured on decoder stage 3's output (``_colors``);
        R its bits, and the learned colorization's color_strength byte."""
        key = (hint_key, classical, *luma_choice.key)
        if key not in self._hint_errors:
            self._hint_errors[key] = tuple(squared_error(plane, colored) for plane, colored
                                           in zip((self.cb, self.cr), self._colors(hint_key, classical, luma_choice)))
        cb_error, cr_error = self._hint_errors[key]
        bits = self._hint_cache[hint_key].bits + (0 if classical else 8)
        return CB_WEIGHT * cb_error + CR_WEIGHT * cr_error + lam * bits

    def _colorings_that_could_win(self, options: list[tuple[tuple, bool]], luma_choice: luma.LumaCandidate,
                                  lam: float) -> list[tuple[tuple, bool]]:
        """``options`` (hint key, classical), in their order, less the learned colorizations that
        could not win even if decoder stage 3 removed COLOR_MAX_GAIN of the classical one's squared
        error in each plane: judged from the least bound up against the best cost so far, every
        classical one first (no network). The network is not run on those left out (encode time);
        the choice is the same while it keeps within that share."""
        best = min(self._chroma_cost(key, True, luma_choice, lam) for key, classical in options if classical)

        def bound(key: tuple) -> float:
            cb_error, cr_error = self._hint_errors[(key, True, *luma_choice.key)]  # measured for ``best``
            return ((1 - COLOR_MAX_GAIN) * (CB_WEIGHT * cb_error + CR_WEIGHT * cr_error)
                    + lam * (self._hint_cache[key].bits + 8))

        bounds = {key: bound(key) for key, classical in options if not classical}
        kept: set[tuple] = set()
        for key in sorted(bounds, key=bounds.get):
            if bounds[key] >= best:
                break
            kept.add(key)
            best = min(best, self._chroma_cost(key, False, luma_choice, lam))
        return [(key, classical) for key, classical in options if classical or key in kept]

    def choose_hints(self, quality: int, luma_choice: luma.LumaCandidate,
                     ) -> tuple[chroma.HintCandidate, bool, tuple[int, int], tuple[np.ndarray, ...]]:
        """The color hints coded at ``quality`` for ``luma_choice``, whether the decoder should
        colorize them classically (the file's classical_color bit, set only if the release has a
        colorizer), the color_strength of a learned colorization (else full) and the (Cb, Cr) the
        decoder will output: the (candidate, colorization) of least
        D + lambda R; with ``--baseline color`` always classical, so the file decodes as judged
        anywhere. Every candidate is judged both ways (the network spared where it cannot make
        the candidate win, ``_colorings_that_could_win``): judging only the best few with the network
        (a prescreen) let a candidate drop out of the few as quality rose, and the file shrink
        (kodim21, quality 29 -> 30). On large images the hints are judged classically (encode
        time), then both colorizations of the chosen ones."""
        lam = lagrange_multiplier(quality)
        learned = self.stages.network("color", self.release) is not None  # False for --baseline color and
                                                                          # releases without a colorizer

        def cost(option: tuple[tuple, bool]) -> float:
            return self._chroma_cost(*option, luma_choice, lam)

        modes = (True, False) if learned and not self.large else (True,)
        options = [(key, mode) for key in self._hint_candidates(quality, luma_choice)  # full-size chroma is
                   for mode in (modes if self._hint_cache[key].hints.factor != 1 else (True,))]  # output as coded
        hint_key, classical = min(self._colorings_that_could_win(options, luma_choice, lam), key=cost)
        if learned and self.large and self._hint_cache[hint_key].hints.factor != 1:
            classical = cost((hint_key, True)) <= cost((hint_key, False))
        strength = chroma.FULL_STRENGTHS if classical else self._learned(hint_key, luma_choice)[0]
        return (self._hint_cache[hint_key], classical and "color" in self.release, strength,
                self._colors(hint_key, classical, luma_choice))

    def encode(self, quality: int) -> tuple[bytes, EncodeReport]:
        """The .nnc bytes of the image at ``quality`` (1..100), and what was chosen."""
        if not QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]:
            raise ValueError(f"quality must be in {QUALITY_RANGE[0]}..{QUALITY_RANGE[1]}, not {quality}")
        self._quality = quality
        luma_choice = self.choose_luma(quality)
        self._tune_deblock_level(luma_choice)
        sections = {"luma": luma_choice.payload}
        hints = None
        decoded = self.decoded_luma(luma_choice)  # what the decoder will output, composed as it does
        classical_color, strength = False, chroma.FULL_STRENGTHS
        if not self.is_gray:
            hints, classical_color, strength, colors = self.choose_hints(quality, luma_choice)
            sections["hints"] = hints.payload
            decoded = ycbcr_to_rgb(decoded, *colors)
        if self.metadata:
            sections["metadata"] = self.metadata
        container = format.Container(
            width=self.width, height=self.height, model_version=model_version(),
            luma_scale=luma_choice.scale, luma_codec="hevc",
            hint_layout=hints.layout if hints else "none", sections=sections, classical_color=classical_color,
            deblock_level=self.chosen_deblock_level(luma_choice), color_strength=strength,
        )
        data = format.build_container(container)
        report = EncodeReport(quality, len(data), luma_choice.scale, luma_choice.quality, container.hint_layout,
                              {**hints.params, "classical_color": classical_color,
                               **({} if classical_color else {"color_strength": strength})} if hints else {},
                              {name: len(payload) for name, payload in sections.items()}, psnr(self.pixels, decoded),
                              luma_choice.loop_filters)
        return data, report


@dataclass
class Decoded:
    """A decoded file: pixels, (H, W, 3) uint8 RGB or (H, W) uint8 gray, and what came with them."""

    pixels: np.ndarray
    icc_profile: bytes = b""
    exif: bytes = b""
    partial: bool = False  # the file was cut short: its color hints (or metadata) are missing


def decode_file_bytes(data: bytes, max_pixels: int = format.DEFAULT_MAX_PIXELS, partial: bool = False,
                      stages: Stages | None = None, progress: Callable[[str], None] | None = None) -> Decoded:
    """Decode .nnc bytes with the weights of the release the file names (spec 6). With ``partial``,
    a file cut short after its luma section gives the grayscale image (``Decoded.partial`` set)
    instead of an error. ``stages``: which stages run their baseline, and torch's threads.
    ``progress``: told of each decoder stage as it starts ("stage 2: upscaling the luma")."""
    stages = stages or Stages()
    progress = progress or (lambda message: None)
    container = format.parse_container(data, max_pixels, partial)
    release = release_models(container.model_version)
    if "deblock" in release and not level_fits(container.deblock_level,
                                               REGISTRY[release["deblock"]].hparams["condition_channels"]):
        raise FormatError(f"the file's deblock level ({container.deblock_level}) does not fit the deblocker of its "
                          f"model version ({release['deblock']}): the file is corrupt")
    if "luma" not in container.sections:
        raise FormatError("file is truncated: no complete luma section")
    luma_payload = container.sections["luma"]
    height, width, scale = container.height, container.width, container.luma_scale
    progress("stage 1: decoding the luma stream")
    stream = luma.decode_luma(luma_payload, container.luma_codec, scale, height, width)
    progress("stage 2: upscaling the luma")
    full_luma = apply_upscale(stream, height, width, scale, len(luma_payload),
                              lambda: stages.network("upscale", release), stages.threads)
    icc_profile, exif = (format.parse_metadata(container.sections["metadata"]) if "metadata" in container.sections
                         else (b"", b""))
    hints = None
    if container.hint_layout != "none":
        if "hints" in container.sections:
            hints = chroma.read_hints(container.hint_layout, container.sections["hints"], stream, height, width)
        elif not partial:
            raise FormatError("file is truncated: no color hints section")
    progress("stage 3: colorizing")
    colors = None
    if hints:
        colorizer = None if container.classical_color else lambda: stages.network(color_entry(release, hints), release)
        colors = chroma.colorize(full_luma, hints, colorizer, stages.threads, container.color_strength)
    progress("stage 4: deblocking")
    deblocked = apply_deblock(full_luma, len(luma_payload), stream.size, scale,
                              lambda: stages.network(deblock_entry(release, scale, lambda: luma.loop_filtered(
                                  luma_payload, container.luma_codec)), release),
                              stages.threads, container.deblock_level)
    if container.hint_layout == "none":
        return Decoded(deblocked, icc_profile, exif, container.truncated)
    if colors is None:
        return Decoded(deblocked, partial=True)
    return Decoded(ycbcr_to_rgb(deblocked, *colors), icc_profile, exif, container.truncated)
