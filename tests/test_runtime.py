"""One place runs networks over images: tiles without seams, deterministic, threads settable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec.models.deblocker import Deblocker
from codec.runtime import run_network, torch_threads


def _random_net(seed: int = 0) -> Deblocker:
    torch.manual_seed(seed)
    network = Deblocker(channels=8)
    for parameter in network.parameters():  # untrained nets are the identity: make this one do something
        parameter.data.normal_(0, 0.2)
    return network.eval()


def _planes(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(1).random((1, height, width), dtype=np.float32)


def test_tiled_equals_untiled():
    network, planes = _random_net(), _planes(150, 133)
    whole = run_network(network, planes, (0.3, 0.5), tile_side=1000)
    tiled = run_network(network, planes, (0.3, 0.5), tile_side=40)
    assert np.abs(whole - planes).max() > 0.05  # the network really changes the image
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_same_bytes_with_one_or_two_threads_and_twice():
    network, planes = _random_net(), _planes(300, 280)
    outputs = [run_network(network, planes, (0.3, 0.5), threads=threads) for threads in (1, 2, 2)]
    assert outputs[0].tobytes() == outputs[1].tobytes() == outputs[2].tobytes()


def test_thread_setting_is_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


def test_a_network_folding_blocks_refuses_unaligned_tiles():
    from codec.models.sr_net import Upscaler

    network = Upscaler(4, channels=4, blocks=1).eval()
    with pytest.raises(ValueError, match="does not align"):
        run_network(network, np.zeros((1, 64, 64), np.float32), (0.0,), tile_side=30)
    with pytest.raises(ValueError, match="does not align"):
        run_network(network, np.zeros((1, 62, 64), np.float32), (0.0,))
