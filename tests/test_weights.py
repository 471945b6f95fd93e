"""Weight files are verified before loading; every release's model version stays decodable."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from codec import weights
from codec.errors import ModelMismatchError, WeightsError
from codec.models import LOOKS, REGISTRY, RELEASES, ModelSpec
from codec.models.deblocker import Deblocker


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    """A registered 'tiny-v1' model whose weight file is in tmp_path; returns (key, path)."""
    network = Deblocker(channels=4)
    path = tmp_path / "tiny-v1.pt"
    torch.save(network.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(REGISTRY, "tiny-v1", ModelSpec(Deblocker, path.name, digest, {"channels": 4}))
    weights._load.cache_clear()
    yield "tiny-v1", path
    weights._load.cache_clear()


def test_a_verified_file_loads_in_eval_mode(tiny_model):
    key, path = tiny_model
    network = weights.load_model(key, path.parent)
    assert isinstance(network, Deblocker) and not network.training
    assert weights.load_model(key, path.parent) is network  # cached


def test_one_flipped_byte_is_refused_before_loading(tiny_model, tmp_path):
    key, path = tiny_model
    altered = tmp_path / "altered"
    altered.mkdir()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    (altered / path.name).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="altered"):
        weights.load_model(key, altered)


def test_a_missing_file_is_a_clear_error(tiny_model, tmp_path):
    key, _ = tiny_model
    with pytest.raises(WeightsError, match="missing"):
        weights.load_model(key, tmp_path / "nowhere")


def test_weights_folder_from_the_environment(tiny_model, tmp_path, monkeypatch):
    key, path = tiny_model
    other = tmp_path / "env"
    other.mkdir()
    shutil.copy(path, other / path.name)
    monkeypatch.setenv("NNC_WEIGHTS_DIR", str(other))
    assert weights.weights_dir() == other
    assert weights.weights_dir(path.parent) == path.parent  # an explicit folder comes first
    assert isinstance(weights.load_model(key), Deblocker)


def test_tensors_that_do_not_fit_the_network_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "wrong-v1.pt"
    torch.save(Deblocker(channels=6).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(REGISTRY, "wrong-v1", ModelSpec(Deblocker, path.name, digest, {"channels": 4}))
    weights._load.cache_clear()
    with pytest.raises(WeightsError, match="does not fit"):
        weights.load_model("wrong-v1", tmp_path)


def test_an_unknown_model_id_lists_the_known_ones():
    with pytest.raises(KeyError, match="known models"):
        weights.load_model("no-such-model")


def test_every_shipped_weight_file_matches_the_registry_and_sha256sums():
    folder = weights.weights_dir()
    listed = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines() if line)
    for key, spec in REGISTRY.items():
        assert weights.file_sha256(folder / spec.weight_file) == spec.sha256 == listed[spec.weight_file], key
        assert spec.weight_file.startswith(key + "-") and spec.weight_file.endswith(f"{spec.sha256[:8]}.pt")
        assert (folder / spec.weight_file).stat().st_size <= 1 << 20


def test_every_look_is_the_network_of_the_model_it_renders():
    """A look swaps weights, not the network: --look on a file of any release must load and run."""
    for key, looks in LOOKS.items():
        for look_key in looks.values():
            assert (REGISTRY[look_key].cls, REGISTRY[look_key].hparams) == (REGISTRY[key].cls, REGISTRY[key].hparams)
            assert not any(look_key in release.values() for release in RELEASES), look_key


def test_release_versions_are_distinct_and_the_first_is_the_classical_one():
    versions = [weights.release_version(release) for release in RELEASES]
    assert versions[0].hex() == "e3b0c442"  # SHA-256 of the empty string: nnc 0.1's files
    assert len(set(versions)) == len(versions)
    assert weights.model_version() == versions[-1]
    for version, release in zip(versions, RELEASES):
        assert weights.release_models(version) == release


def test_an_unknown_model_version_is_refused():
    with pytest.raises(ModelMismatchError, match="deadbeef"):
        weights.release_models(bytes.fromhex("deadbeef"))
