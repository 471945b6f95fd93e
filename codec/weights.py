"""Finds, verifies, loads and caches weight files; the model versions (spec 6) of the releases.

A weight file is found by an explicit folder argument, then ``NNC_WEIGHTS_DIR``, then the installed
location (``<prefix>/share/nnc/weights`` for an install, the repository's ``weights/`` for an
editable one). Its SHA-256 is checked against the registry *before* torch reads it.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from functools import cache
from pathlib import Path

import torch
from torch import nn

from .errors import ModelMismatchError, WeightsError
from .models import REGISTRY, RELEASES

MODEL_VERSION_SIZE = 4
_INSTALLED = Path(sys.prefix) / "share" / "nnc" / "weights"
_REPOSITORY = Path(__file__).resolve().parents[1] / "weights"


def release_version(release: dict[str, str]) -> bytes:
    """First 4 bytes of SHA-256 over the sorted hex digests of a release's weight files (spec 6)."""
    digests = sorted(REGISTRY[key].sha256 for key in release.values())
    return hashlib.sha256("".join(digests).encode("ascii")).digest()[:MODEL_VERSION_SIZE]


def model_version() -> bytes:
    """The model version new files are written with: that of the newest release."""
    return release_version(RELEASES[-1])


def release_models(version: bytes) -> dict[str, str]:
    """Stage -> registry key of the release whose model version is ``version``; ModelMismatchError if none."""
    for release in RELEASES:
        if release_version(release) == version:
            return release
    known = ", ".join(release_version(release).hex() for release in RELEASES)
    raise ModelMismatchError(f"file needs model version {version.hex()}, which this nnc does not know "
                             f"(it decodes {known}): install a newer nnc")


def weights_dir(explicit: str | Path | None = None) -> Path:
    """The folder weight files are read from (see the module docstring for the order)."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get("NNC_WEIGHTS_DIR"):
        return Path(os.environ["NNC_WEIGHTS_DIR"])
    return _INSTALLED if _INSTALLED.is_dir() else _REPOSITORY


def file_sha256(path: Path) -> str:
    """Lowercase hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(key: str, folder: str | Path | None = None) -> nn.Module:
    """The network of registry ``key`` (e.g. "deblock-v1"), verified, in eval mode, cached.

    KeyError listing the known keys for an unknown one; WeightsError if the file is missing,
    its SHA-256 differs from the registry's, or its tensors do not fit the network."""
    if key not in REGISTRY:
        raise KeyError(f"unknown model '{key}': known models are {', '.join(sorted(REGISTRY)) or 'none'}")
    return _load(key, weights_dir(folder).resolve())


@cache
def _load(key: str, folder: Path) -> nn.Module:
    spec = REGISTRY[key]
    path = folder / spec.weight_file
    if not path.is_file():
        raise WeightsError(f"weight file {path} of model {key} is missing: reinstall nnc or set NNC_WEIGHTS_DIR")
    data = path.read_bytes()  # hashed and loaded from the same bytes: no swap in between
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise WeightsError(f"weight file {path} is altered: its SHA-256 is not {spec.sha256[:16]}...")
    network = spec.cls(**spec.hparams)
    try:
        network.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), strict=True)
    except (RuntimeError, ValueError) as error:
        raise WeightsError(f"weight file {path} does not fit model {key}: {str(error).splitlines()[0]}") from None
    return network.eval().to(memory_format=torch.channels_last)
