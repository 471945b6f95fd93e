"""Which decoder stages run learned and which run their classical baseline: one ``Stages`` object,
passed through encode (its rate-distortion choices judge what the decoder outputs) and decode."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from .models import RELEASES
from .weights import load_model

STAGES = ("intra", "upscale", "color", "deblock")
LEARNED_STAGES: frozenset[str] = frozenset(stage for release in RELEASES for stage in release)


@dataclass(frozen=True)
class Stages:
    """The decoder stages to run as their classical baseline, and torch's thread count.

    baseline: stage names (see STAGES); a stage with no learned version in a file's release runs
    its baseline anyway. threads: CPU threads of the learned stages, each running image tiles on
    one torch thread (None: one per core); the output does not depend on it."""

    baseline: frozenset[str] = frozenset()
    threads: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.baseline) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage {', '.join(sorted(unknown))}: choose from {', '.join(STAGES)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        object.__setattr__(self, "baseline", frozenset(self.baseline))

    @classmethod
    def of(cls, baseline: Iterable[str] | Stages = (), threads: int | None = None) -> Stages:
        """A Stages from stage names (or a Stages, returned as it is when ``threads`` is None)."""
        if isinstance(baseline, Stages):
            return baseline if threads is None else cls(baseline.baseline, threads)
        return cls(frozenset(baseline), threads)

    def network(self, stage: str, release: dict[str, str]) -> nn.Module | None:
        """The verified network of ``stage`` in ``release`` (stage -> model key), or None: run the baseline."""
        if stage in self.baseline or stage not in release:
            return None
        return load_model(release[stage])
