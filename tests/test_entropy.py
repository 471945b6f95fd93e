"""Range coding of hint residuals."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import constriction
import numpy as np
import pytest

from codec import entropy

SPEC = (Path(__file__).parents[1] / "format_spec.md").read_text(encoding="utf-8")


def test_residuals_round_trip_and_cost_near_their_entropy():
    residuals = np.clip(np.rint(np.random.default_rng(1).laplace(0, 3, 400)), -63, 63).astype(np.int64)
    spread = entropy.best_spread(residuals)
    coded = entropy.encode_residuals([(residuals, spread), (residuals[:7], 1)], radius=63)
    decoded = entropy.decode_residuals(coded, [(400, spread), (7, 1)], radius=63)
    assert np.array_equal(decoded[0], residuals) and np.array_equal(decoded[1], residuals[:7])
    assert 8 * len(coded) < 1.05 * entropy._ideal_bits(residuals, spread) + 64


def test_garbage_decodes_to_in_range_values_without_error():
    decoded = entropy.decode_residuals(b"\xff\x00\x13", [(50, 7)], radius=31)[0]
    assert len(decoded) == 50 and np.all(np.abs(decoded) <= 31)


RADII = sorted({-(-255 // quant_step) for quant_step in range(1, 256)})  # every radius a file can have
EDGE_MODELS = [(1, 1), (1, 64), (1, 255), (2, 128), (2, 255), (7, 255), (128, 3), (255, 255)]


def _symbol_at(model, quantile: int) -> int:
    """The symbol constriction decodes where the coder's 24-bit quantile is ``quantile``."""
    coder = constriction.stream.stack.AnsCoder(np.array([quantile, 1 << 16], dtype=np.uint32), seal=False)
    return int(coder.decode(model))


def _starts_agree(model, cdf: tuple[int, ...]) -> bool:
    """True if ``model`` gives symbol j exactly the quantiles cdf[j] .. cdf[j+1] - 1, for every j."""
    return all(_symbol_at(model, cdf[j] - 1) == j - 1 and _symbol_at(model, cdf[j]) == j
               for j in range(1, len(cdf) - 1)) and _symbol_at(model, cdf[-1] - 1) == len(cdf) - 2


def test_every_table_is_the_one_the_spec_fixes():
    digest = re.search(r"SHA-256 of all their `F\[0\.\.n\]`.*?`([0-9a-f]{64})`", SPEC, re.DOTALL).group(1)
    sha = hashlib.sha256()
    for spread in range(1, entropy.MAX_SPREAD + 1):
        for radius in RADII:
            cdf = entropy.geometric_cdf(spread, radius)
            assert len(cdf) == 2 * radius + 2 and cdf[0] == 0 and cdf[-1] == 1 << entropy.PRECISION
            assert all(high > low for low, high in zip(cdf, cdf[1:])), (spread, radius)
            sha.update(b"".join(value.to_bytes(4, "big") for value in cdf))
    assert sha.hexdigest() == digest


@pytest.mark.parametrize("spread, radius", EDGE_MODELS)
def test_the_coder_uses_the_table_unchanged(spread, radius):
    assert _starts_agree(entropy._geometric_model(spread, radius), entropy.geometric_cdf(spread, radius))


@pytest.mark.parametrize("spread, radius", EDGE_MODELS)
def test_tables_equal_the_float_model_older_files_were_coded_with(spread, radius):
    """nnc <= 0.2 gave constriction numpy-normalised float weights; its quantisation of them is the spec's table."""
    powers = [1.0]
    for _ in range(radius):
        powers.append(powers[-1] * (spread / (spread + 1)))
    table = np.array(powers[:0:-1] + powers, dtype=np.float64)
    legacy = constriction.stream.model.Categorical(table / table.sum(), perfect=False)
    assert _starts_agree(legacy, entropy.geometric_cdf(spread, radius))
