"""Trains the stage-2 upscalers (x2 and x4, one ``Upscalers`` weight file) on nnc's decoded luma streams.

    python -m codec.training.data                        # once: the cached training samples
    python -m codec.training.upscale --steps 12000
    python -m codec.training.upscale --steps 12000 --export weights/
    python -m codec.training.upscale --init upscale-v1 --lr 5e-4 --steps 10000 \
        --checkpoints ~/.cache/nnc/train/checkpoints-upscale-v2
    python -m codec.training.upscale --look perceptual --steps 2000 --export weights/
    python -m codec.training.upscale --look perceptual --grid-lines --grid-weight 4 --bf16 --steps 600

Each step: a batch of random crops for each scale (96x96 full-size pixels at x2, 128x128 at x4,
aligned to the scale, rotated and flipped), the network's input the bicubic upscale of the
decoded stream as the decoder makes it, the target the original luma; the loss is the sum of
both scales' MSE. Adam with a cosine learning rate over ``--steps``, fixed seed. A checkpoint
every 250 steps (``--checkpoints``, outside the repository) lets an interrupted run resume.
Validation: the PSNR-Y gain of ``codec.upscale.apply_upscale`` (the decoder's own code) over
bicubic on the held-out photos, per scale and x265 quality band. ``--export DIR`` writes the
final state as ``upscale-v<N>-<sha256[:8]>.pt`` (``upscale_perceptual-...`` for ``--look perceptual``,
which fine-tunes the released fidelity weights adversarially: see ``train_perceptual``;
``--grid-lines`` and ``--grid-weight`` set its grid loss). ``--bf16``: forward passes in bfloat16
mixed precision (``common.bf16_training``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..color import upsample_bicubic
from ..metrics import gradient_energy, grid_strength, psnr
from ..models import REGISTRY, RELEASES
from ..models.sr_net import Discriminator, Upscalers
from ..stages import LOOK_CHOICES
from ..upscale import apply_upscale, rate_condition
from ..weights import load_model
from .common import (
    CheckpointError,
    CropSource,
    add_init_argument,
    add_training_arguments,
    bf16_training,
    cosine_schedule,
    export_weights,
    optimise,
    random_crops,
    run_steps,
    standard_state,
)
from .data import UPSCALE_LOOP_FILTERS, UPSCALE_SCALES, up_to_date

MODEL_ID = "upscale"
HPARAMS = {"x2": {"condition_channels": 1, "channels": 32, "blocks": 6},  # x2: 0.27 s on a 384x256 stream
           "x4": {"condition_channels": 1, "channels": 48, "blocks": 6}}  # x4: 0.17 s on 192x128
CROPS = {2: 96, 4: 128}  # full-size crop side per scale


@dataclass
class Sample:
    """One held-out or training photo's luma stream coded one way."""

    stream: np.ndarray  # (h, w) uint8, decoded
    bicubic: np.ndarray  # (H, W) uint8, the baseline's output
    target: np.ndarray  # (H, W) uint8, the original luma
    luma_bytes: int
    x265_quality: int

    @property
    def condition(self) -> tuple[float]:
        return (rate_condition(self.luma_bytes, self.stream.size),)


def load_samples(cache: Path, split: str) -> dict[int, list[Sample]]:
    """scale -> every cached sample of ``split`` ("train" or "val")."""
    samples: dict[int, list[Sample]] = {scale: [] for scale in UPSCALE_SCALES}
    for path in sorted((cache / "upscale" / split).glob("*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        if not up_to_date("upscale", path):
            raise SystemExit(f"{path} was coded with other loop-filter settings than the encoder now uses: "
                             "run python -m codec.training.data --kinds upscale first")
        with np.load(path) as data:
            original = data["original"]
            for scale in UPSCALE_SCALES:
                for index, quality in enumerate(data["x265_quality"].tolist()):
                    stream = data[f"x{scale}_decoded"][index]
                    luma_bytes = int(data[f"x{scale}_luma_bytes"][index])
                    samples[scale].append(Sample(stream, upsample_bicubic(stream, *original.shape), original,
                                                 luma_bytes, quality))
    if not samples[UPSCALE_SCALES[0]]:
        raise SystemExit(f"no cached upscale samples in {cache / 'upscale' / split}: "
                         "run python -m codec.training.data first")
    return samples


def crop_sources(samples: dict[int, list[Sample]]) -> dict[int, list[CropSource]]:
    """Per scale, what ``common.random_crops`` cuts training crops from: the bicubic picture and the original."""
    return {scale: [((sample.bicubic[None],), sample.target[None], sample.condition) for sample in scale_samples]
            for scale, scale_samples in samples.items()}


def _band(x265_quality: int) -> str:
    return "x265<=6" if x265_quality <= 6 else "x265<=14" if x265_quality <= 14 else "x265<=24" \
        if x265_quality <= 24 else "x265>24"


def validate(networks: Upscalers, samples: dict[int, list[Sample]]) -> dict[str, float]:
    """Mean PSNR-Y gain (dB) of the decoder's learned stage 2 over bicubic, per scale and x265 quality
    band; per scale the gradient energy of its output over the original's ("x2 detail") and the
    strength of a grid of the scale's period in its error, in levels, over the whole picture ("x2
    grid", ``grid_strength``) and along each row and column ("x2 line grid": also dots along edges,
    above a floor that any error adds: compare networks on the same samples)."""
    networks.eval()
    gains: dict[str, list[float]] = {}
    for scale, scale_samples in samples.items():
        for sample in scale_samples:
            height, width = sample.target.shape
            output = apply_upscale(sample.stream, height, width, scale, sample.luma_bytes, lambda: networks, 2)
            gain = psnr(sample.target, output) - psnr(sample.target, sample.bicubic)
            gains.setdefault(f"x{scale} {_band(sample.x265_quality)}", []).append(gain)
            gains.setdefault(f"x{scale} all", []).append(gain)
            gains.setdefault(f"x{scale} detail", []).append(gradient_energy(output)
                                                            / max(gradient_energy(sample.target), 1e-12))
            gains.setdefault(f"x{scale} grid", []).append(grid_strength(sample.target, output, scale))
            gains.setdefault(f"x{scale} line grid", []).append(grid_strength(sample.target, output, scale, lines=True))
    networks.train()
    return {band: float(np.mean(values)) for band, values in sorted(gains.items())}


def deepen_into(networks: Upscalers, state: dict[str, torch.Tensor]) -> None:
    """Load ``state``, the weights of upscalers with the same widths and fewer residual blocks, into
    ``networks`` so that they compute the same function: every layer ``state`` has is copied, and each
    block it lacks starts as the identity (the block's last conv at zero; its first conv keeps its
    random initialisation, so the block learns from there). ValueError if a layer does not fit."""
    target = networks.state_dict()
    for name, old in state.items():
        if name not in target or target[name].shape != old.shape:
            raise ValueError(f"{name}: {tuple(old.shape)} does not fit into these networks")
        target[name] = old
    for name in set(target) - set(state):
        if ".blocks." not in name:
            raise ValueError(f"{name}: only residual blocks may be new")
        if ".body.2." in name:
            target[name] = torch.zeros_like(target[name])
    networks.load_state_dict(target)


def train(steps: int, cache: Path, checkpoints: Path, seed: int = 0, batch: int = 16,
          learning_rate: float = 1e-3, validate_every: int = 500, threads: int = 2,
          crops: dict[int, int] = CROPS, init: str | None = None, bf16: bool = False) -> dict:
    """Train (or resume) to ``steps``; returns the final {"step", "validation", "state"}.

    init: a registry key (e.g. "upscale-v1") whose weights a new run starts from, deepened to
    HPARAMS by ``deepen_into`` (default: fresh networks). A checkpoint is resumed only by a run
    with the same ``init`` and HPARAMS (CheckpointError otherwise: each run its own folder).
    bf16: forward passes in bfloat16 mixed precision (``common.bf16_training``)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    networks = Upscalers(**HPARAMS)
    if init:
        deepen_into(networks, load_model(init).state_dict())
    mixed = bf16_training(networks, bf16)
    optimizer = torch.optim.Adam(networks.parameters(), lr=learning_rate)
    schedule = cosine_schedule(optimizer, steps)
    parts = {"network": networks, "optimizer": optimizer, "schedule": schedule}
    latest = checkpoints / f"{MODEL_ID}.pt"
    rng = np.random.default_rng(seed)
    train_samples, val_samples = load_samples(cache, "train"), load_samples(cache, "val")
    sources = crop_sources(train_samples)
    params = {name: sum(p.numel() for p in net.parameters()) for name, net in networks.nets.items()}
    print(f"upscale: {len(train_samples[2])} training, {len(val_samples[2])} validation samples per scale; "
          f"parameters {params}", file=sys.stderr)
    networks.train()

    def train_step() -> dict[str, float]:
        losses = {}
        for scale in UPSCALE_SCALES:
            inputs, conditions, targets = random_crops(sources[scale], rng, batch, crops[scale], scale)
            with mixed():
                outputs = networks.for_scale(scale)(inputs, conditions)
            losses[f"x{scale}"] = nn.functional.mse_loss(outputs, targets)  # float32
        optimise(sum(losses.values()), optimizer, schedule)
        return {f"{name} mse": loss.item() for name, loss in losses.items()}

    step, validation = run_steps(steps, train_step, lambda: validate(networks, val_samples), latest, parts, rng,
                                 validate_every, {"batch": batch, "crops": crops, "lr": learning_rate, "seed": seed,
                                                  "init": init, **({"bf16": True} if bf16 else {}), **HPARAMS},
                                 fixed=("init", *HPARAMS))
    return {"step": step, "validation": validation, "state": standard_state(networks)}


def phase_error(output: torch.Tensor, target: torch.Tensor, scale: int, lines: bool = False) -> torch.Tensor:
    """The grid loss: mean absolute deviation of each crop's mean error per phase (each of the
    scale x scale sub-pixel positions) from the crop's mean error. A sub-pixel convolution pushed
    by a discriminator tends to offset its phases against each other: a visible grid. lines:
    instead, the phases along each row and each column of the crop separately (the mean of both),
    which also sees dots along an edge: a pattern repeating along the rows whose strength or sign
    changes from row to row, so that it cancels out in the crop's means. output, target: (N, 1, H,
    W) float32, H and W multiples of ``scale``; returns a scalar."""
    error = output - target
    if lines:
        count, _, height, width = error.shape
        rows = error.reshape(count, height, width // scale, scale).mean(dim=2)  # (N, H, scale)
        columns = error.transpose(2, 3).reshape(count, width, height // scale, scale).mean(dim=2)  # (N, W, scale)
        return sum((phases - phases.mean(dim=2, keepdim=True)).abs().mean() for phases in (rows, columns)) / 2
    phases = nn.functional.pixel_unshuffle(error, scale).mean(dim=(2, 3))  # (N, scale**2)
    return (phases - phases.mean(dim=1, keepdim=True)).abs().mean()


def train_perceptual(steps: int, cache: Path, checkpoints: Path, seed: int = 0, batch: int = 16,
                     learning_rate: float = 1e-4, adversarial_weight: float = 1e-2, feature_weight: float = 1e-1,
                     grid_weight: float = 1.0, grid_lines: bool = False, validate_every: int = 500,
                     threads: int = 2, crops: dict[int, int] = CROPS, bf16: bool = False) -> dict:
    """Fine-tune the newest release's fidelity weights adversarially, as SRGAN does, against a
    small ``Discriminator`` per scale trained alongside; the generator's loss is L1 + adversarial_weight
    * the adversarial loss + feature_weight * L1 between the discriminator's features of the output
    and of the original (feature matching: no downloaded network) + grid_weight * ``phase_error``
    (over each crop, or along its rows and columns: grid_lines). Resumable like ``train``;
    bf16: the forward passes of both networks in bfloat16 mixed precision."""
    start = RELEASES[-1]["upscale"]
    if REGISTRY[start].loop_filters != UPSCALE_LOOP_FILTERS:
        raise SystemExit(f"{start} reads streams {'with' if REGISTRY[start].loop_filters else 'without'} HEVC's "
                         "loop filters, unlike the cached samples: its looks must be trained on what it reads")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    networks = copy.deepcopy(load_model(start))
    discriminators = nn.ModuleDict({f"x{scale}": Discriminator() for scale in UPSCALE_SCALES})
    mixed = bf16_training(networks, bf16)
    bf16_training(discriminators, bf16)
    generator_optimizer = torch.optim.Adam(networks.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    discriminator_optimizer = torch.optim.Adam(discriminators.parameters(), lr=learning_rate, betas=(0.5, 0.999))
    parts = {"network": networks, "discriminator": discriminators, "optimizer_g": generator_optimizer,
             "optimizer_d": discriminator_optimizer}
    latest = checkpoints / f"{MODEL_ID}_perceptual.pt"
    rng = np.random.default_rng(seed)
    train_samples, val_samples = load_samples(cache, "train"), load_samples(cache, "val")
    sources = crop_sources(train_samples)
    bce = nn.functional.binary_cross_entropy_with_logits
    networks.train()

    def train_step() -> dict[str, float]:
        losses = {"l1": 0.0, "generator": 0.0, "discriminator": 0.0}
        for scale in UPSCALE_SCALES:
            inputs, conditions, targets = random_crops(sources[scale], rng, batch, crops[scale], scale)
            discriminator = discriminators[f"x{scale}"]
            with mixed():
                output = networks.for_scale(scale)(inputs, conditions)
                real_logits, fake_logits = discriminator(targets).float(), discriminator(output.detach()).float()
            d_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
            optimise(d_loss, discriminator_optimizer)
            with mixed():
                real_features = [feature.detach().float() for feature in discriminator.features(targets)]
                fake_features = [feature.float() for feature in discriminator.features(output)]
                fake_logits = discriminator.logit(fake_features[-1]).float()
            content = nn.functional.l1_loss(output, targets)  # the output is float32: a correction added to the input
            matching = sum(nn.functional.l1_loss(fake, real) for fake, real in zip(fake_features, real_features))
            g_loss = (content + adversarial_weight * bce(fake_logits, torch.ones_like(fake_logits))
                      + feature_weight * matching / len(fake_features)
                      + grid_weight * phase_error(output, targets, scale, grid_lines))
            optimise(g_loss, generator_optimizer)
            for name, loss in (("l1", content), ("generator", g_loss), ("discriminator", d_loss)):
                losses[name] += loss.item() / len(UPSCALE_SCALES)
        return losses

    step, validation = run_steps(steps, train_step, lambda: validate(networks, val_samples), latest, parts, rng,
                                 validate_every, {"batch": batch, "crops": crops, "lr": learning_rate, "seed": seed,
                                                  "adversarial_weight": adversarial_weight,
                                                  "feature_weight": feature_weight, "grid_weight": grid_weight,
                                                  **({"grid_lines": True} if grid_lines else {}),
                                                  **({"bf16": True} if bf16 else {}),
                                                  "init": RELEASES[-1]["upscale"]}, fixed=("init",))
    return {"step": step, "validation": validation, "state": standard_state(networks)}


def main(argv: list[str] | None = None) -> None:
    """Command line: train, resume or export the upscaler weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--look", choices=LOOK_CHOICES, default="fidelity",
                        help="fidelity: train (MSE); perceptual: fine-tune the newest release's upscaler adversarially")
    add_training_arguments(parser)
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-3 fidelity, 1e-4 perceptual)")
    add_init_argument(parser, (MODEL_ID,), "fidelity: start a new run from this model's weights (deepened)")
    parser.add_argument("--grid-lines", action="store_true",
                        help="perceptual: the grid loss along each row and column of a crop (it then also sees "
                             "dots along edges) instead of over the whole crop")
    parser.add_argument("--grid-weight", type=float,
                        help="perceptual: the grid loss's weight beside the L1 loss (default: 1)")
    parser.add_argument("--bf16", action="store_true",
                        help="forward passes in bfloat16 mixed precision: faster on a CPU with AMX (a perceptual "
                             "step 2.5 times) (default: float32)")
    args = parser.parse_args(argv)
    if args.init and args.look != "fidelity":
        parser.error("--init is for --look fidelity: a perceptual run starts from the newest release's upscaler")
    if (args.grid_lines or args.grid_weight is not None) and args.look != "perceptual":
        parser.error("--grid-lines and --grid-weight are for --look perceptual: the fidelity look has no grid loss")
    if args.grid_weight is not None and args.grid_weight < 0:
        parser.error(f"--grid-weight {args.grid_weight} is negative: it would reward a grid")
    try:
        if args.look == "fidelity":
            final = train(args.steps, args.cache, args.checkpoints, args.seed, args.batch, args.lr or 1e-3,
                          args.validate_every, init=args.init, bf16=args.bf16)
        else:
            final = train_perceptual(args.steps, args.cache, args.checkpoints, args.seed, args.batch,
                                     args.lr or 1e-4, grid_weight=1.0 if args.grid_weight is None else args.grid_weight,
                                     grid_lines=args.grid_lines,
                                     validate_every=args.validate_every, bf16=args.bf16)
    except CheckpointError as error:
        parser.error(str(error))
    print(f"step {final['step']}, validation {final['validation']}")
    if args.export:
        # half precision keeps the file under 1 MB; loading converts it back to float32
        export_weights({name: value.half() for name, value in final["state"].items()},
                       MODEL_ID if args.look == "fidelity" else f"{MODEL_ID}_{args.look}", args.export, args.version)


if __name__ == "__main__":
    main()
