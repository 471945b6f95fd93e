"""What every training script shares: the step loop with progress, validation and resumable
checkpoints, PSNR, the learning-rate schedule and weight-file export."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..models import REGISTRY
from .data import DEFAULT_CACHE

CHECKPOINT_EVERY = 250  # steps


def psnr(mse: float) -> float:
    """PSNR in dB of a mean squared error on [0, 1] planes."""
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def save_checkpoint(path: Path, parts: dict, rng: np.random.Generator, step: int, validation: dict,
                    settings: dict) -> None:
    """Write a checkpoint atomically (an interrupted save leaves the previous one whole): the state of
    each part (networks, optimizers, schedules, by name), both random generators, step, validation
    and the run's settings (batch, learning rate...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save({**{name: part.state_dict() for name, part in parts.items()}, "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "step": step, "validation": validation,
                "settings": settings}, temporary)
    temporary.replace(path)


class CheckpointError(ValueError):
    """A checkpoint was written by a run that this one cannot continue (another start or network)."""


def resume(path: Path, parts: dict, rng: np.random.Generator, settings: dict,
           fixed: tuple[str, ...] = ()) -> tuple[int, dict]:
    """Load the checkpoint at ``path`` into ``parts`` and ``rng``, if there is one (saying so, and
    which of ``settings`` differ from the run that wrote it); returns (step, validation): (0, {})
    for a fresh start. CheckpointError, before anything is loaded, if one of the ``fixed``
    settings (the weights a run starts from, the network's shape) differs."""
    if not path.exists():
        return 0, {}
    checkpoint = torch.load(path, weights_only=False)
    written = checkpoint.get("settings", {})
    clashes = [f"{name} {written.get(name)!r}, not {settings.get(name)!r}" for name in fixed
               if written.get(name) != settings.get(name)]
    if clashes:
        raise CheckpointError(f"{path} was written by a run with {'; '.join(clashes)}: "
                              "give this run a checkpoint folder of its own (--checkpoints)")
    for name, part in parts.items():
        part.load_state_dict(checkpoint[name])
    rng.bit_generator.state = checkpoint["rng"]
    torch.set_rng_state(checkpoint["torch_rng"])
    print(f"resumed at step {checkpoint['step']} from {path}", file=sys.stderr)
    names = [*settings, *(name for name in written if name not in settings)]  # a setting dropped is a change
    changed = {name: (written.get(name), settings.get(name)) for name in names
               if "settings" in checkpoint and written.get(name) != settings.get(name)}
    if changed:
        print("note: settings differ from the run that wrote the checkpoint: "
              + ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changed.items()), file=sys.stderr)
    return checkpoint["step"], checkpoint.get("validation", {})


def run_steps(steps: int, train_step: Callable[[], dict[str, float]], validate: Callable[[], dict[str, float]],
              checkpoint: Path, parts: dict, rng: np.random.Generator, validate_every: int,
              settings: dict, fixed: tuple[str, ...] = ()) -> tuple[int, dict[str, float]]:
    """Resume ``parts`` and ``rng`` from the ``checkpoint`` file if there is one, then call
    ``train_step`` (one optimisation step; returns its losses by name) up to ``steps``, with a
    progress line of the running losses, ``validate`` every ``validate_every`` steps and at the
    end, and a checkpoint every CHECKPOINT_EVERY steps and at the end (with ``settings``, the
    run's batch, learning rate..., compared on resume; the ``fixed`` ones must match: see
    ``resume``). Returns the step reached
    (more than ``steps`` if the checkpoint was already past it) and the last validation."""
    step, validation = resume(checkpoint, parts, rng, settings, fixed)
    if step == 0:
        print(f"step 0 validation: {validate()}", file=sys.stderr)
    started, start_step, running = time.monotonic(), step, {}
    while step < steps:
        losses = train_step()
        step += 1
        running = {name: value if name not in running else 0.98 * running[name] + 0.02 * value
                   for name, value in losses.items()}
        rate = (step - start_step) / (time.monotonic() - started)
        print(f"\r[{step}/{steps}] " + " ".join(f"{name} {value:.4g}" for name, value in running.items())
              + f" {rate:.2f} steps/s, {(steps - step) / rate / 60:.0f} min left", end="", file=sys.stderr, flush=True)
        if step % validate_every == 0 or step == steps:
            validation = validate()
            print(f"\nstep {step} validation: " + ", ".join(f"{k} {v:+.3f}" for k, v in validation.items()),
                  file=sys.stderr, flush=True)
        if step % CHECKPOINT_EVERY == 0 or step == steps:
            save_checkpoint(checkpoint, parts, rng, step, validation, settings)
    print(file=sys.stderr)
    return step, validation


def optimise(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
             schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
    """One optimisation step on ``loss``: clear the gradients, back-propagate, step (and the schedule)."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()


CropSource = tuple[tuple[np.ndarray, ...], np.ndarray, tuple[float, ...]]  # (input planes, target, condition)


def random_crops(sources: list[CropSource], rng: np.random.Generator, batch: int, crop: int,
                 align: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, conditions, targets), float32 tensors in [0, 1]: ``batch`` crops of crop x crop
    pixels, their top left on multiples of ``align``, rotated and flipped at random, of sources
    at least ``crop`` pixels on each side, chosen in proportion to their area. A source is
    (input planes, target, condition): (C, H, W) uint8 arrays (the inputs joined on channels)
    and the network's condition values."""
    weights = np.array([target[0].size * (min(target.shape[1:]) >= crop) for _, target, _ in sources], np.float64)
    chosen = rng.choice(len(sources), size=batch, p=weights / weights.sum())
    inputs, targets, conditions = [], [], []
    for index in chosen:
        planes, target, condition = sources[index]
        height, width = target.shape[1:]
        top = align * int(rng.integers(0, (height - crop) // align + 1))
        left = align * int(rng.integers(0, (width - crop) // align + 1))
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        pair = []
        for stack in (np.concatenate([plane[:, top:top + crop, left:left + crop] for plane in planes]),
                      target[:, top:top + crop, left:left + crop]):
            window = np.rot90(stack, k, axes=(1, 2))
            pair.append((window[:, :, ::-1] if flip else window).astype(np.float32) / np.float32(255.0))
        inputs.append(pair[0])
        targets.append(pair[1])
        conditions.append(condition)
    return (torch.from_numpy(np.stack(inputs)), torch.tensor(conditions, dtype=torch.float32),
            torch.from_numpy(np.stack(targets)))


def export_weights(state: dict, model_id: str, folder: Path, version: int) -> Path:
    """Write ``state`` as ``<model_id>-v<version>-<sha256[:8]>.pt`` in ``folder``; prints and returns the path."""
    temporary = folder / f".{model_id}-v{version}.pt"
    torch.save(state, temporary)
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    path = folder / f"{model_id}-v{version}-{digest[:8]}.pt"
    temporary.replace(path)
    print(f"{path.name}  sha256 {digest}  params {sum(v.numel() for v in state.values())}")
    return path


def cosine_schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate from its initial value down to 1 % of it over ``steps``, as half a cosine."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0))))


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options every training script takes."""
    parser.add_argument("--steps", type=int, default=12000, help="total steps (a resumed run continues to it)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CACHE / "checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--validate-every", type=int, default=500)
    parser.add_argument("--export", type=Path, metavar="DIR", help="write the final state as a weight file")
    parser.add_argument("--version", type=int, default=1, help="the N of the exported file's -vN")


def bf16_training(network: torch.nn.Module, enabled: bool) -> Callable[[], contextlib.AbstractContextManager]:
    """Prepare ``network`` for mixed-precision training steps where ``enabled``, and return what
    gives the context each forward pass runs in: bfloat16 autocast (the weights, their gradients
    and the optimiser stay float32), or nothing. Enabled, the weights take the channels-last
    layout that oneDNN's bfloat16 convolutions want (``standard_state`` undoes it); on a CPU with
    AMX this about halves a step (measured: the deblocker at fold 2, batch 16 of 96x96, 0.22 s ->
    0.10 s); without AMX it may be slower, and its rounding differs, so a run remakes its
    weights exactly only on a CPU of the same kind. Validation, export and decoding run float32."""
    if enabled:
        network.to(memory_format=torch.channels_last)
    return lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def standard_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``network``'s state dict with its weights back in the standard layout (after
    ``bf16_training``), so that a weight file's bytes do not depend on how it was trained."""
    network.to(memory_format=torch.contiguous_format)
    return network.state_dict()


def model_id_of(key: str) -> str:
    """The model id of a registry key ``<model_id>-v<N>``."""
    return key.rsplit("-v", 1)[0]


def add_init_argument(parser: argparse.ArgumentParser, model_ids: tuple[str, ...], purpose: str) -> None:
    """``--init MODEL``: a registry key of one of ``model_ids`` (argparse refuses any other, in one line)."""
    choices = sorted(key for key in REGISTRY if model_id_of(key) in model_ids)
    parser.add_argument("--init", metavar="MODEL", choices=choices, help=f"{purpose}; one of: {', '.join(choices)}")
