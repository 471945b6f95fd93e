"""REGISTRY of the learned models: model id -> ModelSpec. Codes in the file never come from dict order.

Version 0 of nnc runs classical baselines in every stage, so the registry is empty; its digest
still defines the model version (spec 6) that every file carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """A learned model: its network class, hyperparameters, weight file name and its SHA-256."""

    cls: type
    weight_file: str
    sha256: str
    hparams: dict = field(default_factory=dict)


REGISTRY: dict[str, ModelSpec] = {}
