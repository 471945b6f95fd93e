"""One place runs networks over images: tiles without seams, deterministic, threads settable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codec.models.deblocker import Deblocker
from codec.runtime import run_network, run_side_by_side, torch_threads


def _random_net(seed: int = 0, fold: int = 1) -> Deblocker:
    torch.manual_seed(seed)
    network = Deblocker(channels=8, fold=fold)
    for parameter in network.parameters():  # untrained nets are the identity: make this one do something
        parameter.data.normal_(0, 0.2)
    return network.eval()


def _planes(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(1).random((1, height, width), dtype=np.float32)


@pytest.mark.parametrize("fold", [1, 2])
def test_tiled_equals_untiled(fold):
    network, planes = _random_net(fold=fold), _planes(150, 133)
    whole = run_network(network, planes, (0.3, 0.5), tile_side=1000)
    tiled = run_network(network, planes, (0.3, 0.5), tile_side=40)
    assert np.abs(whole - planes).max() > 0.05  # the network really changes the image
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_same_bytes_with_one_or_two_threads_and_twice():
    network, planes = _random_net(), _planes(300, 280)
    outputs = [run_network(network, planes, (0.3, 0.5), threads=threads) for threads in (1, 2, 2)]
    assert outputs[0].tobytes() == outputs[1].tobytes() == outputs[2].tobytes()


def test_side_by_side_keeps_the_jobs_order_and_stops_at_an_error():
    started, announced = [], []

    def job(index: int) -> int:
        started.append(index)
        if index == 1:
            raise ValueError("job 1 failed")
        return index * index

    assert run_side_by_side([lambda i=i: i * i for i in range(7)], 2, announced.append) == [0, 1, 4, 9, 16, 25, 36]
    assert announced == list(range(7))  # told in the caller's thread, in order
    assert run_side_by_side([lambda i=i: i for i in range(3)], threads=1) == [0, 1, 2]
    with pytest.raises(ValueError, match="job 1 failed"):
        run_side_by_side([lambda i=i: job(i) for i in range(200)], threads=2)
    assert set(started) in ({0, 1}, {0, 1, 2})  # none after the failure (job 2 may start before it is seen)


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
    with pytest.raises(ValueError, match="do not align"):
        run_network(network, np.zeros((1, 64, 64), np.float32), (0.0,), tile_side=30)


def test_a_network_folding_blocks_reads_an_unaligned_image_edge_padded():
    network, planes = _random_net(fold=2), _planes(61, 83)
    padded = np.pad(planes, ((0, 0), (0, 1), (0, 1)), mode="edge")
    output = run_network(network, planes, (0.3, 0.5), tile_side=32)
    assert output.shape == planes.shape and np.abs(output - planes).max() > 0.05
    np.testing.assert_allclose(output, run_network(network, padded, (0.3, 0.5), tile_side=32)[:, :61, :83],
                               atol=1e-5)
