"""Trains the deblocking CNN: ``codec`` weights (decoder stage 4) or ``jpeg`` weights (``nnc restore``).

    python -m codec.training.data --kinds codec          # once: the cached training samples
    python -m codec.training.deblock --set codec --init deblock-v1 --lr 5e-4 --steps 10000
    python -m codec.training.deblock --set codec --init deblock-v1 --lr 5e-4 --steps 10000 --export weights/ --version 2
    python -m codec.training.deblock --set codec --init deblock-v2 --scales 1 --lr 3e-4 --steps 15000 \
        --checkpoints ~/.cache/nnc/train/checkpoints-deblock-v3
    python -m codec.training.deblock --set jpeg --channels 48 --init deblock_jpeg-v1 --steps 9000
    python -m codec.training.deblock --set codec --scales 1 --fold 2 --crop 96 --bf16 --steps 45000 \
        --checkpoints ~/.cache/nnc/train/checkpoints-deblock-v6bf
    python -m codec.training.data --kinds codec_unfiltered   # x1 luma coded without HEVC's loop filters
    python -m codec.training.deblock --set codec_unfiltered --init deblock-v6 --scales 1 --fold 2 --crop 96 \
        --lr 5e-4 --bf16 --steps 20000 --checkpoints ~/.cache/nnc/train/checkpoints-deblock-v7
    python -m codec.training.data --kinds codec_unfiltered_x1   # and x1 luma at qualities 10-25
    python -m codec.training.deblock --set codec_unfiltered --x1 --balance --init deblock-v7 --scales 1 --fold 2 \
        --crop 96 --lr 5e-4 --bf16 --steps 20000 --checkpoints ~/.cache/nnc/train/checkpoints-deblock-v8b
    python -m codec.training.data --kinds codec_x1   # x1 luma with the loop filters at qualities 10-25
    python -m codec.training.deblock --set codec --x1 --balance --init deblock-v6 --scales 1 --fold 2 \
        --crop 96 --lr 5e-4 --bf16 --steps 20000 --checkpoints ~/.cache/nnc/train/checkpoints-deblock-v9

Random 64x64 crops (``--crop``; rotated and flipped; for ``--fold`` F at rows and columns that
are multiples of F) of the cached samples, batch 16, Adam with a cosine learning rate over
``--steps``, fixed seed, MSE loss (``--balance``: each sample's relative to its input's;
``--bf16``: forward passes in bfloat16 mixed precision).
``codec`` samples (``codec_unfiltered``: with full-size luma coded without HEVC's loop filters,
for the release's ``deblock_unfiltered`` network) are nnc's decoded luma at every cached quality
(``--scales 1``: only those whose luma was coded full size, the only ones the encoder runs stage
4 on), each with its condition as the decoder reads it from the file: rate, scale and the
deblock level (the luma's PSNR before stage 4, as the encoder measures it; the level it writes
may lie near it, tuned per file). ``--x1`` adds the set's ``_x1`` kind: its luma coded full size
at qualities 10-25, where the encoder codes most training photos' luma at x2 or x4.
A checkpoint every 250 steps (``--checkpoints``, outside the repository) lets an interrupted run
resume where it stopped. Validation: the PSNR gain over the network's input on the held-out
photos, per quality band, and ``switched``: the mean gain where the encoder turns stage 4 off for
an image it would harm (level 0). ``--export DIR`` writes the final state (the end of the
learning-rate schedule) as ``<model_id>-v<N>-<sha256[:8]>.pt`` and prints its digest.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..color import reduced_size, rgb_to_ycbcr
from ..deblock import deblock_condition, deblock_level
from ..models import REGISTRY
from ..models.deblocker import Deblocker
from ..pipeline import DEBLOCK_SCALES, LUMA_SCALE_CHOICES
from ..restore import restore_condition
from ..runtime import run_network
from ..weights import load_model
from .common import (
    CheckpointError,
    add_init_argument,
    add_training_arguments,
    bf16_training,
    cosine_schedule,
    export_weights,
    model_id_of,
    optimise,
    psnr,
    run_steps,
    standard_state,
)

_STAGE_4 = ("deblock", {"image_channels": 1, "condition_channels": 3, "channels": 48})
SETS = {  # weight set (and the cached samples' kind) -> (model id, network hyperparameters)
    "codec": _STAGE_4,
    "codec_unfiltered": _STAGE_4,  # the same network, for full-size luma coded without HEVC's loop filters
    "jpeg": ("deblock_jpeg", {"image_channels": 3, "condition_channels": 1, "channels": 24}),
}
CODEC_VALIDATION_BANDS = (10, 25)  # the validation's quality bands end at these: nnc qualities...
JPEG_VALIDATION_BANDS = (12, 50, 85)  # ...and JPEG ones


@dataclass
class Sample:
    """One cached photo coded one way: network input and target, (C, H, W) float32 in [0, 1]; its
    weight in the training loss."""

    image: np.ndarray
    target: np.ndarray
    condition: tuple[float, ...]
    quality: int
    weight: float = 1.0


def _planes(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (C, H, W) float32 in [0, 1] (RGB becomes Y, Cb, Cr)."""
    planes = pixels[None].astype(np.float32) if pixels.ndim == 2 else np.stack(rgb_to_ycbcr(pixels))
    return planes / np.float32(255.0)


def load_samples(cache: Path, weight_set: str, split: str, max_bpp: float = math.inf,
                 scales: tuple[int, ...] = LUMA_SCALE_CHOICES) -> list[Sample]:
    """Every cached sample of ``weight_set`` (a kind of SETS, or its ``_x1`` kind) in ``split``
    ("train" or "val"); samples of the codec kinds only up to ``max_bpp`` luma bits per pixel and
    with their luma coded at one of ``scales``."""
    samples = []
    for path in sorted((cache / weight_set / split).glob("*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        with np.load(path) as data:
            target = _planes(data["original"])
            height, width = data["original"].shape[:2]
            for index, quality in enumerate(data["quality"].tolist()):
                if weight_set != "jpeg":
                    scale = int(data["scale"][index])
                    if 8 * int(data["luma_bytes"][index]) > max_bpp * height * width or scale not in scales:
                        continue
                    stream_pixels = math.prod(reduced_size(height, width, scale))
                    level = deblock_level(data["original"], data["decoded"][index])
                    condition = deblock_condition(int(data["luma_bytes"][index]), stream_pixels, scale, level)
                else:
                    condition = restore_condition(float(data["estimated_quality"][index]))
                samples.append(Sample(_planes(data["decoded"][index]), target, condition, quality))
    if not samples:
        raise SystemExit(f"no cached {weight_set} samples in {cache / weight_set / split}: "
                         "run python -m codec.training.data first")
    return samples


def random_batch(samples: list[Sample], rng: np.random.Generator, batch: int, crop: int,
                 align: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, conditions, targets, weights): random crops of random samples (drawn in proportion
    to their area), rotated and flipped at random; inputs and targets (batch, C, side, side)
    float32 in [0, 1] with side ``crop`` rounded down to a multiple of ``align`` (samples are
    larger), conditions (batch, K) float32, weights (batch,) float32 (the samples' ``weight``).
    align: crops start at a
    multiple of it, so a network folding align x align blocks sees the coded image's block grid as
    the decoder gives it (rotations and flips keep it there)."""
    areas = np.array([s.image.shape[1] * s.image.shape[2] for s in samples], np.float64)
    chosen = rng.choice(len(samples), size=batch, p=areas / areas.sum())
    inputs, targets, conditions = [], [], []
    for index in chosen:
        sample = samples[index]
        height, width = sample.image.shape[1:]
        side = min(crop, height, width) // align * align
        top = align * rng.integers(0, (height - side) // align + 1)
        left = align * rng.integers(0, (width - side) // align + 1)
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        pair = []
        for planes in (sample.image, sample.target):
            window = np.rot90(planes[:, top:top + side, left:left + side], k, axes=(1, 2))
            pair.append(np.ascontiguousarray(window[:, :, ::-1] if flip else window))
        inputs.append(pair[0])
        targets.append(pair[1])
        conditions.append(sample.condition)
    return (torch.from_numpy(np.stack(inputs)), torch.tensor(conditions, dtype=torch.float32),
            torch.from_numpy(np.stack(targets)),
            torch.tensor([samples[index].weight for index in chosen], dtype=torch.float32))


def balance_weights(samples: list[Sample]) -> None:
    """Set each sample's loss weight to 1 / its input's mean squared error (floored at 1e-10 against
    a division by zero), scaled so that the weights' mean over the samples is 1 (``--balance``)."""
    inverse = np.array([1.0 / max(float(np.mean((s.image - s.target) ** 2)), 1e-10) for s in samples])
    for sample, weight in zip(samples, inverse / inverse.mean()):
        sample.weight = float(weight)


def validate(network: nn.Module, samples: list[Sample],
             bands: tuple[int, ...] = CODEC_VALIDATION_BANDS) -> dict[str, float]:
    """Mean PSNR gain (dB, on [0, 1] planes) of the network's output over its input, per quality band
    (up to each of ``bands``, and above the last), and "switched": the mean over every sample of the
    gain, or 0 where it is negative (the encoder's level 0)."""
    network.eval()
    gains: dict[str, list[float]] = {}
    for sample in samples:
        output = np.clip(run_network(network, sample.image, sample.condition), 0.0, 1.0)
        gain = (psnr(float(np.mean((output - sample.target) ** 2)))
                - psnr(float(np.mean((sample.image - sample.target) ** 2))))
        band = next((f"q<={bound}" for bound in bands if sample.quality <= bound), f"q>{bands[-1]}")
        gains.setdefault(band, []).append(gain)
        gains.setdefault("all", []).append(gain)
        gains.setdefault("switched", []).append(max(gain, 0.0))
    network.train()
    return {band: float(np.mean(values)) for band, values in sorted(gains.items())}


def widen_into(network: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state``, the weights of a narrower network of the same layers, into ``network`` so
    that it computes the same function: each tensor fills the leading slice of its wider
    counterpart; the new channels keep their random initialisation for their inputs, and the old
    channels read nothing from them (those weights start at zero, and learn from there).

    Conv weights are (out, in, k, k); biases and PReLU slopes (out,)."""
    target = network.state_dict()
    if set(state) != set(target):
        raise ValueError(f"the layers differ: {sorted(set(state) ^ set(target))}")
    for name, old in state.items():
        new = target[name].clone()
        if (new.dim() != old.dim() or any(o > n for o, n in zip(old.shape, new.shape))
                or old.shape[2:] != new.shape[2:]):
            raise ValueError(f"{name}: {tuple(old.shape)} does not fit into {tuple(new.shape)}")
        if new.dim() == 4:
            new[:old.shape[0], old.shape[1]:] = 0.0
        new[tuple(slice(0, size) for size in old.shape)] = old
        target[name] = new
    network.load_state_dict(target)


def train(weight_set: str, steps: int, cache: Path, checkpoints: Path, seed: int = 0, batch: int = 16,
          crop: int = 64, learning_rate: float = 1e-3, validate_every: int = 500, threads: int = 2,
          max_bpp: float = math.inf, init: str | None = None, channels: int | None = None,
          scales: tuple[int, ...] = LUMA_SCALE_CHOICES, fold: int | None = None, bf16: bool = False,
          x1: bool = False, balance: bool = False) -> dict:
    """Train (or resume) to ``steps``; returns the final {"step", "validation", "state"}.

    weight_set: a key of SETS, also the kind of cached samples read. max_bpp: ``codec`` (and
    ``codec_unfiltered``) samples above this many luma bits per pixel are left out; scales: the luma
    scales whose samples are used (the encoder runs stage 4 at DEBLOCK_SCALES). init: a registry
    key (e.g. "deblock-v1") whose weights a new run starts from, widened if ``channels`` is wider
    (default: a fresh network). channels, fold: the hidden width and the block side folded into
    channels (default: the set's, in SETS; crops are aligned to the fold). bf16: forward passes in
    bfloat16 mixed precision (``common.bf16_training``). x1: also the samples of the kind
    ``<weight_set>_x1`` (``codec`` sets: luma forced full size at qualities 10-25, where the
    encoder codes most training photos' luma at x2 or x4), in training and validation. balance: each
    training sample's squared error weighted by 1 / its input's (the weights' mean 1), so that it
    counts relative to its own error, as a PSNR gain does: the large errors of the low qualities
    do not outweigh the high qualities' (default: plain MSE)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    hparams = {**SETS[weight_set][1], **({"channels": channels} if channels else {}),
               **({"fold": fold} if fold and fold > 1 else {})}
    network = Deblocker(**hparams)
    if init:
        widen_into(network, load_model(init).state_dict())
    mixed = bf16_training(network, bf16)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    schedule = cosine_schedule(optimizer, steps)
    parts = {"network": network, "optimizer": optimizer, "schedule": schedule}
    folded = f"-fold{hparams['fold']}" if "fold" in hparams else ""
    latest = checkpoints / f"deblock-{weight_set}-{hparams['channels']}ch{folded}.pt"
    rng = np.random.default_rng(seed)
    kinds = (weight_set, f"{weight_set}_x1") if x1 else (weight_set,)
    train_samples = [s for kind in kinds for s in load_samples(cache, kind, "train", max_bpp, scales)]
    val_samples = [s for kind in kinds for s in load_samples(cache, kind, "val", max_bpp, scales)]
    if balance:
        balance_weights(train_samples)
    params = sum(p.numel() for p in network.parameters())
    print(f"{weight_set}: {len(train_samples)} training, {len(val_samples)} validation samples; "
          f"{params} parameters", file=sys.stderr)
    network.train()

    def train_step() -> dict[str, float]:
        inputs, conditions, targets, weights = random_batch(train_samples, rng, batch, crop, network.scale)
        with mixed():
            outputs = network(inputs, conditions)
        # float32 (the correction is added to the input); without --balance every weight is 1: the MSE
        loss = torch.mean(weights * torch.mean((outputs - targets) ** 2, dim=(1, 2, 3)))
        optimise(loss, optimizer, schedule)
        return {"weighted mse" if balance else "mse": loss.item()}

    settings = {"batch": batch, "crop": crop, "lr": learning_rate, "seed": seed, "max_bpp": max_bpp,
                "scales": list(scales), "init": init, **({"bf16": True} if bf16 else {}),
                **({"x1": True} if x1 else {}), **({"balance": True} if balance else {}), **hparams}
    bands = JPEG_VALIDATION_BANDS if weight_set == "jpeg" else CODEC_VALIDATION_BANDS
    step, validation = run_steps(steps, train_step, lambda: validate(network, val_samples, bands), latest, parts, rng,
                                 validate_every, settings, fixed=("init", "scales", "x1", *hparams))
    return {"step": step, "validation": validation, "state": standard_state(network)}


def main(argv: list[str] | None = None) -> None:
    """Command line: train, resume or export a deblocker weight set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="weight_set", choices=sorted(SETS), required=True)
    add_training_arguments(parser)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-bpp", type=float, default=math.inf,
                        help="codec samples above this many luma bits per pixel are left out (default: none)")
    add_init_argument(parser, tuple(model_id for model_id, *_ in SETS.values()),
                      "start a new run from this model's weights, widened to --channels: deblock-vN for --set "
                      "codec and codec_unfiltered, deblock_jpeg-vN for --set jpeg")
    parser.add_argument("--channels", type=int, help="hidden width (default: the set's own, in SETS)")
    parser.add_argument("--fold", type=int, choices=(1, 2, 4), default=1,
                        help="fold each FOLD x FOLD block into channels: the layers run at 1/FOLD "
                             "resolution (default: 1, none)")
    parser.add_argument("--bf16", action="store_true",
                        help="forward passes in bfloat16 mixed precision: about twice as fast on a CPU with "
                             "AMX (default: float32)")
    parser.add_argument("--scales", type=int, nargs="+", choices=LUMA_SCALE_CHOICES, default=LUMA_SCALE_CHOICES,
                        help="codec samples only with their luma coded at these scales (default: all; the "
                             f"encoder runs stage 4 at {', '.join(map(str, DEBLOCK_SCALES))})")
    parser.add_argument("--x1", action="store_true",
                        help="codec sets: also the samples with luma forced full size at qualities 10-25 "
                             "(python -m codec.training.data --kinds SET_x1)")
    parser.add_argument("--balance", action="store_true",
                        help="weight each training sample's squared error by 1 / its input's, so that each "
                             "counts relative to its own error, as a PSNR gain does (default: plain MSE)")
    args = parser.parse_args(argv)
    if args.init and model_id_of(args.init) != SETS[args.weight_set][0]:
        parser.error(f"--init {args.init} is not a model of --set {args.weight_set} ({SETS[args.weight_set][0]})")
    if args.x1 and args.weight_set == "jpeg":
        parser.error("--x1 is for the codec sets: --set jpeg has no luma scales")
    if args.init and REGISTRY[args.init].hparams.get("fold", 1) != args.fold:
        parser.error(f"--init {args.init} does not fold {args.fold}x{args.fold} blocks: train a new network "
                     "without --init")
    try:
        final = train(args.weight_set, args.steps, args.cache, args.checkpoints, args.seed, args.batch, args.crop,
                      args.lr, args.validate_every, max_bpp=args.max_bpp, init=args.init, channels=args.channels,
                      scales=tuple(args.scales), fold=args.fold, bf16=args.bf16, x1=args.x1,
                      balance=args.balance)
    except CheckpointError as error:
        parser.error(str(error))
    print(f"step {final['step']}, validation gain (dB) {final['validation']}")
    if args.export:
        export_weights(final["state"], SETS[args.weight_set][0], args.export, args.version)


if __name__ == "__main__":
    main()
