"""The installed weights and the model version (spec 6) they define."""

from __future__ import annotations

import hashlib

from .models import REGISTRY

MODEL_VERSION_SIZE = 4


def model_version() -> bytes:
    """First 4 bytes of SHA-256 over the sorted hex digests of the registered weight files (spec 6)."""
    digests = sorted(spec.sha256 for spec in REGISTRY.values())
    return hashlib.sha256("".join(digests).encode("ascii")).digest()[:MODEL_VERSION_SIZE]
