"""Which decoder stages run learned and which run their classical baseline: one ``Stages`` object,
passed through encode (its rate-distortion choices judge what the decoder outputs) and decode."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from .models import LOOKS, RELEASES, stage_of
from .weights import load_model

STAGES = ("upscale", "color", "deblock")  # the decoder stages after the luma stream (stage 1: HEVC, not learned)
LOOK_CHOICES = ("fidelity", "perceptual")  # the upscaler's weight sets: least error, or sharper texture
LEARNED_STAGES: frozenset[str] = frozenset(stage_of(entry) for release in RELEASES for entry in release)


@dataclass(frozen=True)
class Stages:
    """The decoder stages to run as their classical baseline, the look, and torch's thread count.

    baseline: stage names (see STAGES); a stage with no learned version in a file's release runs
    its baseline anyway. threads: CPU threads of the learned stages, each running image tiles on
    one torch thread (None: one per core); the encoder codes that many x265 candidates at once, up
    to 2 (``pipeline.CODING_THREADS``). The output does not depend on it. look: "fidelity"
    (the release's networks) or "perceptual" (their perceptual weights where a network has some,
    see models.LOOKS; the file does not change, only how the decoder renders it)."""

    baseline: frozenset[str] = frozenset()
    threads: int | None = None
    look: str = "fidelity"

    def __post_init__(self) -> None:
        unknown = set(self.baseline) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage {', '.join(sorted(unknown))}: choose from {', '.join(STAGES)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if self.look not in LOOK_CHOICES:
            raise ValueError(f"unknown look {self.look}: choose from {', '.join(LOOK_CHOICES)}")
        object.__setattr__(self, "baseline", frozenset(self.baseline))

    @classmethod
    def of(cls, baseline: Iterable[str] | Stages = (), threads: int | None = None, look: str | None = None) -> Stages:
        """A Stages from stage names, or from a Stages whose threads and look are replaced by those given."""
        if isinstance(baseline, Stages):
            return cls(baseline.baseline, baseline.threads if threads is None else threads, look or baseline.look)
        return cls(frozenset(baseline), threads, look or "fidelity")

    def network(self, stage: str, release: dict[str, str]) -> nn.Module | None:
        """The verified network of ``stage`` in ``release`` (stage -> model key; ``stage`` may be
        another entry of a stage, ``models.DEBLOCK_UNFILTERED`` or ``models.COLORIZE_FINE``), or None:
        run the baseline."""
        if stage_of(stage) in self.baseline or stage not in release:
            return None
        key = release[stage]
        if self.look != "fidelity" and not any(self.look in LOOKS.get(other, {}) for other in release.values()):
            warnings.warn(f"the release's networks ({', '.join(sorted(release.values()))}) have no {self.look} "
                          "weights: rendered with their fidelity weights", stacklevel=2)
        return load_model(LOOKS.get(key, {}).get(self.look, key))
