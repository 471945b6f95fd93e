"""Trains the colorizers of decoder stage 3 (``HintColorizer``) on hints coded as nnc's encoder codes them.

    python -m codec.training.data                        # once: the cached training samples
    python -m codec.training.colorize --steps 6000
    python -m codec.training.colorize --steps 6000 --export weights/
    python -m codec.training.colorize --init colorize-v1 --lr 5e-4 --steps 18000 \
        --checkpoints ~/.cache/nnc/train/checkpoints-colorize-v2   # v2, from v1 (weights/README.md)
    python -m codec.training.colorize --net colorize_fine --crop 96 --bf16 --steps 20000 \
        --checkpoints ~/.cache/nnc/train/checkpoints-colorize_fine-v1   # the release's second colorizer

``--net`` picks the network (NETS): ``colorize`` on every hint layout, ``colorize_fine`` (2x2
blocks folded) on grid thumbnails at 1/2 alone, as the release's COLORIZE_FINE entry runs it.

A checkpoint is resumed only by a run with the same ``--init``: a run from other weights is
refused there (each run its own ``--checkpoints`` folder).

Each step: a batch of random 128x128 crops (aligned to the network's fold, rotated and flipped)
of the cached ``color/`` samples, the input the decoded full-size luma and the classical
colorization of one hint variant (grid thumbnail at 1/2, 1/4 or 1/8, or segment hints), the
target the original Cb and Cr; MSE. Adam with a cosine learning rate over ``--steps``, fixed
seed, a checkpoint every 250 steps (``--checkpoints``, outside the repository) to resume from
(``--bf16``: forward passes in bfloat16 mixed precision).
Validation: the PSNR-CbCr gain of ``codec.chroma.refine_colors`` (the decoder's own code, with
``keep_mean``, which training leaves out: it is a whole-image shift) over the
classical colorization on the held-out photos, per layout and thumbnail factor, at full strength
(the file's color strength is the encoder's per-image choice). ``--export DIR`` writes the final
state as ``<net>-v<N>-<sha256[:8]>.pt``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..chroma import refine_colors
from ..metrics import psnr
from ..models.colorizer import HintColorizer
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
    random_crops,
    run_steps,
    standard_state,
)

NETS = {  # model id -> (network hyperparameters, the hint variants it is trained and validated on: Sample.kind)
    "colorize": ({"fold": 4, "condition_channels": 3, "channels": 40, "blocks": 4, "keep_mean": True},
                 ("grid x2", "grid x4", "grid x8", "segments")),
    # stage 3 on thumbnails at 1/2 (models.COLORIZE_FINE): 2x2 blocks folded, so that each output pixel
    # has hidden channels of its own block rather than a 4x4 block's share of 40
    "colorize_fine": ({"fold": 2, "condition_channels": 3, "channels": 32, "blocks": 4, "keep_mean": True},
                      ("grid x2",)),
}
CROP = 128


@dataclass
class Sample:
    """One photo's hints coded one way, with the luma they go with; planes (H, W) uint8."""

    luma: np.ndarray
    classical: np.ndarray  # (2, H, W): Cb, Cr as the classical baseline colorizes the hints
    target: np.ndarray  # (2, H, W): the original Cb, Cr
    condition: tuple[float, float, float]  # chroma.colorize_condition of the hints
    layout: str

    @property
    def kind(self) -> str:
        """"segments" or "grid x<factor>" (the factor read back from the condition's spacing)."""
        return self.layout if self.layout == "segments" else f"grid x{round(2 ** (4 * self.condition[1]))}"


def load_samples(cache: Path, split: str, kinds: tuple[str, ...] = NETS["colorize"][1]) -> list[Sample]:
    """Every cached hint variant of ``split`` ("train" or "val") whose ``Sample.kind`` is one of ``kinds``."""
    samples = []
    for path in sorted((cache / "color" / split).glob("*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        with np.load(path) as data:
            target, lumas = data["original"], data["luma"]
            for classical, condition, index, layout in zip(data["classical"], data["condition"].tolist(),
                                                           data["luma_index"].tolist(), data["layout"].tolist()):
                sample = Sample(lumas[index], classical, target, tuple(condition), str(layout))
                if sample.kind in kinds:
                    samples.append(sample)
    if not samples:
        raise SystemExit(f"no cached color samples of {', '.join(kinds)} in {cache / 'color' / split}: "
                         "run python -m codec.training.data first")
    return samples


def validate(network: HintColorizer, samples: list[Sample]) -> dict[str, float]:
    """Mean PSNR-CbCr gain (dB) of the decoder's stage 3 over the classical colorization, per
    layout and thumbnail factor, and overall."""
    network.eval()
    gains: dict[str, list[float]] = {}
    for sample in samples:
        output = np.stack(refine_colors(network, sample.luma, sample.classical, sample.condition, 2))
        gain = psnr(sample.target, output) - psnr(sample.target, sample.classical)
        for name in (sample.kind, "all"):
            gains.setdefault(name, []).append(gain)
    network.train()
    return {name: float(np.mean(values)) for name, values in sorted(gains.items())}


def train(steps: int, cache: Path, checkpoints: Path, seed: int = 0, batch: int = 16, crop: int = CROP,
          learning_rate: float = 1e-3, validate_every: int = 500, threads: int = 2, init: str | None = None,
          model_id: str = "colorize", bf16: bool = False) -> dict:
    """Train (or resume) to ``steps``; returns the final {"step", "validation", "state"}.

    model_id: a key of NETS, the network trained and the hint variants it sees. init: a registry
    key of that model (e.g. "colorize-v1") whose weights a new run starts from (default: a fresh
    network, which colorizes as the classical baseline does). bf16: forward passes in bfloat16
    mixed precision (``common.bf16_training``)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    hparams, kinds = NETS[model_id]
    network = HintColorizer(**hparams)
    if init:
        network.load_state_dict(load_model(init).state_dict())
    mixed = bf16_training(network, bf16)
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    schedule = cosine_schedule(optimizer, steps)
    parts = {"network": network, "optimizer": optimizer, "schedule": schedule}
    rng = np.random.default_rng(seed)
    train_samples, val_samples = load_samples(cache, "train", kinds), load_samples(cache, "val", kinds)
    print(f"{model_id}: {len(train_samples)} training, {len(val_samples)} validation hint variants; "
          f"{sum(p.numel() for p in network.parameters())} parameters", file=sys.stderr)
    sources = [((sample.luma[None], sample.classical), sample.target, sample.condition) for sample in train_samples]
    network.train()

    def train_step() -> dict[str, float]:
        inputs, conditions, targets = random_crops(sources, rng, batch, crop, network.scale)
        with mixed():
            outputs = network(inputs, conditions)
        loss = nn.functional.mse_loss(outputs, targets)  # float32: the correction is added to the input
        optimise(loss, optimizer, schedule)
        return {"mse": loss.item()}

    settings = {"batch": batch, "crop": crop, "lr": learning_rate, "seed": seed, "init": init,
                **({"bf16": True} if bf16 else {})}
    step, validation = run_steps(steps, train_step, lambda: validate(network, val_samples),
                                 checkpoints / f"{model_id}.pt", parts, rng, validate_every, settings,
                                 fixed=("init",))
    return {"step": step, "validation": validation, "state": standard_state(network)}


def main(argv: list[str] | None = None) -> None:
    """Command line: train, resume or export a colorizer's weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_arguments(parser)
    parser.add_argument("--net", dest="model_id", choices=sorted(NETS), default="colorize",
                        help="colorize: every hint layout; colorize_fine: thumbnails at 1/2")
    parser.add_argument("--crop", type=int, default=CROP)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--bf16", action="store_true",
                        help="forward passes in bfloat16 mixed precision (about twice as fast on a CPU with AMX)")
    add_init_argument(parser, tuple(NETS), "start a new run from this model's weights (one of --net's)")
    args = parser.parse_args(argv)
    if args.init and model_id_of(args.init) != args.model_id:
        parser.error(f"--init {args.init} is not a {args.model_id} model")
    try:
        final = train(args.steps, args.cache, args.checkpoints, args.seed, args.batch, args.crop, args.lr,
                      args.validate_every, init=args.init, model_id=args.model_id, bf16=args.bf16)
    except CheckpointError as error:
        parser.error(str(error))
    print(f"step {final['step']}, validation gain (dB) {final['validation']}")
    if args.export:
        export_weights(final["state"], args.model_id, args.export, args.version)


if __name__ == "__main__":
    main()
