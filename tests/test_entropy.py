"""Range coding of hint residuals."""

from __future__ import annotations

import numpy as np

from codec import entropy


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
