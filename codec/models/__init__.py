"""REGISTRY of the learned models and RELEASES, the model sets that files name. Codes never come from dict order.

A registry key is ``<model_id>-v<N>``: model id (a stable name) and its version. Each release maps
decoder stages to registry keys; its model version (spec 6) is derived from the weight files'
digests. Releases are only ever appended: every file written by a release decodes forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .deblocker import Deblocker


@dataclass(frozen=True)
class ModelSpec:
    """A learned model: its network class, hyperparameters, weight file name and its SHA-256."""

    cls: type
    weight_file: str
    sha256: str
    hparams: dict = field(default_factory=dict)


REGISTRY: dict[str, ModelSpec] = {
    "deblock-v1": ModelSpec(Deblocker, "deblock-v1-bf59e780.pt",
                            "bf59e780e368bcfd0d986e75c723f9d32e09d6e91130981e62bda97f55aa9627",
                            {"image_channels": 1, "condition_channels": 2, "channels": 24}),
    # nnc restore (JPEG files): in no release, since it decodes no .nnc file
    "deblock_jpeg-v1": ModelSpec(Deblocker, "deblock_jpeg-v1-8681bc53.pt",
                                 "8681bc536ec86407ac686d17499289f4b24450541479470d8698625a71102cfc",
                                 {"image_channels": 3, "condition_channels": 1, "channels": 24}),
}

# Stage -> registry key, one dict per release, oldest first. Release 0 (nnc 0.1 and 0.2, model version
# e3b0c442) runs every stage as its classical baseline; release 1 (nnc 0.3) adds the deblocker.
RELEASES: tuple[dict[str, str], ...] = ({}, {"deblock": "deblock-v1"})

__all__ = ["REGISTRY", "RELEASES", "ModelSpec", "Deblocker"]
