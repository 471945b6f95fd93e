"""Training scripts, in a reduced form: data from nnc's real encoder, a few steps, resume, export, load."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from codec import weights
from codec.models import DEBLOCK_UNFILTERED, LOOKS, REGISTRY, RELEASES, ModelSpec
from codec.models.colorizer import HintColorizer
from codec.models.deblocker import Deblocker
from codec.models.sr_net import Upscalers
from codec.training import colorize, data, deblock, upscale
from codec.training.common import CheckpointError, export_weights
from conftest import synthetic_rgb


def _names(count: int, validation: bool) -> list[str]:
    """Photo stems whose cache name is (or is not) held out for validation."""
    found, index = [], 0
    while len(found) < count:
        stem = f"p{index}"
        if data.is_validation(f"bsds-train-{stem}") == validation:
            found.append(stem)
        index += 1
    return found


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """A training tree of three tiny photos (one held out) and its cache, made by the real encoder."""
    root = tmp_path_factory.mktemp("train")
    (root / "bsds500" / "train").mkdir(parents=True)
    (root / "extra").mkdir()
    stems = _names(2, False) + _names(1, True)
    for seed, stem in enumerate(stems):
        Image.fromarray(synthetic_rgb(96, 136, seed)).save(root / "bsds500" / "train" / f"{stem}.jpg", quality=95)
    (root / "bsds500" / "ROTATED_TRAIN.tsv").write_text(f"image\tk\n{stems[0]}.jpg\t1\n")
    cache = root / "cache"
    data.build_cache(root, cache, jobs=1)
    return cache, stems


def test_cache_holds_decoded_samples_of_both_kinds(tiny_cache, tmp_path):
    cache, stems = tiny_cache
    with np.load(cache / "codec" / "train" / f"bsds-train-{stems[0]}.npz") as sample:
        assert sample["original"].shape == (68, 48)  # 136x96 halved, then turned upright
        assert sample["decoded"].shape == (4, 68, 48) and sample["decoded"].dtype == np.uint8
        assert list(sample["scale"]) and set(sample["scale"].tolist()) <= {1, 2, 4}
        assert sample["x265_quality"].shape == (4,)  # the chosen luma stream, so stage 3's data can remake it
        assert str(sample["pipeline"]) == data.stages_before_deblock()
    jpeg = cache / "jpeg" / "val" / f"bsds-train-{stems[2]}.npz"
    with np.load(jpeg) as sample:
        assert sample["decoded"].shape == (len(data.JPEG_QUALITY_BANDS), 48, 68, 3)
        assert np.array_equal(sample["estimated_quality"], sample["quality"])
        assert all(low <= quality <= high for quality, (low, high) in zip(sample["quality"], data.JPEG_QUALITY_BANDS))
        older = {**sample, "quality": sample["quality"][:4]}  # made with the four bands of nnc 0.17.1
    assert data.up_to_date("jpeg", jpeg)
    np.savez(tmp_path / jpeg.name, **older)
    assert not data.up_to_date("jpeg", tmp_path / jpeg.name)  # made again by the next build_cache


@pytest.mark.parametrize("weight_set", ["codec", "jpeg"])
def test_training_resumes_and_exports_a_loadable_weight_file(tiny_cache, tmp_path, weight_set, capsys, monkeypatch):
    cache, _ = tiny_cache
    checkpoints = tmp_path / "checkpoints"
    deblock.train(weight_set, 2, cache, checkpoints, crop=32, batch=2, validate_every=1)
    final = deblock.train(weight_set, 3, cache, checkpoints, crop=32, batch=2, validate_every=1)
    log = capsys.readouterr().err
    assert "resumed at step 2" in log and "settings differ" not in log
    deblock.train(weight_set, 3, cache, checkpoints, crop=32, batch=3, validate_every=1)  # already there: no step
    assert "settings differ from the run that wrote the checkpoint: batch 2 -> 3" in capsys.readouterr().err
    assert final["step"] == 3 and "all" in final["validation"]
    model_id, hparams = deblock.SETS[weight_set]
    path = export_weights(final["state"], model_id, tmp_path, 7)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == f"{model_id}-v7-{digest[:8]}.pt"
    monkeypatch.setitem(REGISTRY, f"{model_id}-v7", ModelSpec(Deblocker, path.name, digest, hparams))
    weights._load.cache_clear()
    network = weights.load_model(f"{model_id}-v7", tmp_path)
    assert torch.equal(network.tail[1].weight, final["state"]["tail.1.weight"])


def test_deblocker_training_can_keep_to_the_luma_scales_stage_4_runs_at(tiny_cache, tmp_path):
    """--scales 1: only samples whose luma was coded full size (where the encoder runs stage 4);
    a checkpoint written with other scales is refused, not continued."""
    cache, _ = tiny_cache
    every = deblock.load_samples(cache, "codec", "train")
    full_size = deblock.load_samples(cache, "codec", "train", scales=(1,))
    assert full_size and all(sample.condition[1] == 0.0 for sample in full_size)  # log2(scale) / 2
    assert len(full_size) == sum(sample.condition[1] == 0.0 for sample in every) < len(every)
    deblock.train("codec", 1, cache, tmp_path, crop=32, batch=2, validate_every=1, scales=(1,))
    with pytest.raises(CheckpointError, match=r"scales \[1\], not \[1, 2, 4\]"):
        deblock.train("codec", 2, cache, tmp_path, crop=32, batch=2, validate_every=1)


def test_a_folding_deblocker_trains_on_crops_aligned_to_the_coded_block_grid(tiny_cache, tmp_path):
    """--fold 2: crops start at even rows and columns, so the network sees HEVC's block edges in
    the phase the decoder gives it; its checkpoint is its own, not a fold-1 run's."""
    cache, _ = tiny_cache
    rng = np.random.default_rng(0)
    cells = [deblock.Sample(np.kron(rng.random((1, *(side // 2 for side in sample.image.shape[1:]))),
                                    np.ones((2, 2))).astype(np.float32), sample.target, sample.condition,
                            sample.quality) for sample in deblock.load_samples(cache, "codec", "train")]
    inputs, *_ = deblock.random_batch(cells, rng, 32, 31, align=2)  # images of random 2x2 cells
    assert inputs.shape[2:] == (30, 30)
    for row, col in ((0, 1), (1, 0), (1, 1)):  # every crop is made of whole cells, rotated or flipped
        assert torch.equal(inputs[:, :, row::2, col::2], inputs[:, :, 0::2, 0::2])
    shifted, *_ = deblock.random_batch(cells, rng, 32, 30)  # unaligned crops cut the cells
    assert not torch.equal(shifted[:, :, 1::2, 0::2], shifted[:, :, 0::2, 0::2])
    deblock.train("codec", 1, cache, tmp_path, crop=32, batch=2, validate_every=1)
    final = deblock.train("codec", 1, cache, tmp_path, crop=33, batch=2, validate_every=1, fold=2)  # 32x32 crops
    assert final["step"] == 1 and final["state"]["tail.1.weight"].shape == (4, 48, 5, 5)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deblock-codec-48ch-fold2.pt", "deblock-codec-48ch.pt"]


def test_bf16_training_steps_compute_in_bfloat16_and_validation_in_float32(tiny_cache, tmp_path, monkeypatch):
    """--bf16: the training steps' forward passes run in bfloat16; validation, like decoding, in float32."""
    cache, _ = tiny_cache
    seen = []

    class Recording(Deblocker):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.units.register_forward_hook(lambda module, inputs, output: seen.append((self.training, output.dtype)))

    monkeypatch.setattr(deblock, "Deblocker", Recording)
    deblock.train("codec", 2, cache, tmp_path / "bf16", crop=32, batch=2, validate_every=1, fold=2, bf16=True)
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}
    assert {dtype for training, dtype in seen if not training} == {torch.float32}
    seen.clear()
    deblock.train("codec", 1, cache, tmp_path / "float32", crop=32, batch=2, validate_every=1, fold=2)
    assert {dtype for _, dtype in seen} == {torch.float32}


def test_a_bf16_run_writes_its_weights_as_a_float32_run_would(tiny_cache, tmp_path):
    """--bf16 keeps the weights channels-last while it trains; its weight file has the bytes that a
    float32 network with the same weights gives (so the file's digest does not depend on it)."""
    cache, _ = tiny_cache
    final = deblock.train("codec", 2, cache, tmp_path / "run", crop=32, batch=2, validate_every=1, fold=2,
                          bf16=True)
    assert final["state"]["tail.1.weight"].abs().sum() > 0  # it trained
    network = Deblocker(**deblock.SETS["codec"][1], fold=2)
    network.load_state_dict(final["state"])
    (tmp_path / "bf16").mkdir()
    (tmp_path / "float32").mkdir()
    exported = export_weights(final["state"], "deblock", tmp_path / "bf16", 7)
    assert exported.read_bytes() == export_weights(network.state_dict(), "deblock", tmp_path / "float32",
                                                   7).read_bytes()


def test_a_wider_run_starts_from_the_narrower_weights_unchanged(tiny_cache, tmp_path):
    """--init with a wider --channels: the widened network computes what the released one does,
    and trains from there."""
    cache, _ = tiny_cache
    released = weights.load_model("deblock_jpeg-v1")
    wider = Deblocker(image_channels=3, condition_channels=1, channels=32)
    deblock.widen_into(wider, released.state_dict())
    image, condition = torch.rand(2, 3, 24, 24), torch.tensor([[0.1], [0.4]])
    with torch.no_grad():
        assert torch.allclose(wider(image, condition), released(image, condition), atol=1e-5)
        assert not torch.allclose(released(image, condition), image, atol=1e-3)  # the released net is no identity
    with pytest.raises(ValueError, match="does not fit"):
        deblock.widen_into(Deblocker(3, 1, 16), released.state_dict())
    final = deblock.train("jpeg", 1, cache, tmp_path, crop=32, batch=2, validate_every=1, init="deblock_jpeg-v1",
                          channels=32)
    assert final["state"]["tail.1.weight"].shape == (3, 32, 5, 5)


def test_the_cache_can_be_made_for_some_kinds_only(tmp_path, tiny_cache):
    cache, stems = tiny_cache
    root = cache.parent
    data.build_cache(root, tmp_path, jobs=1, kinds=("jpeg",))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["jpeg"]
    assert len(list((tmp_path / "jpeg").rglob("*.npz"))) == len(stems)


def test_the_upscaler_cache_holds_streams_at_both_scales(tiny_cache):
    cache, stems = tiny_cache
    with np.load(cache / "upscale" / "train" / f"bsds-train-{stems[1]}.npz") as sample:
        assert sample["original"].shape == (48, 68)
        assert sample["x2_decoded"].shape == (4, 24, 34) and sample["x4_decoded"].shape == (4, 12, 17)
        assert (np.diff(sample["x4_luma_bytes"]) >= 0).all()  # qualities drawn in rising bands


def test_upscaler_samples_are_coded_as_the_encoder_codes_for_the_upscaler_being_trained(tiny_cache, tmp_path):
    """Streams without HEVC's loop filters (the encoder's for an upscaler trained on them); a sample
    made with the filters is out of date, so the cache is remade rather than silently mixed."""
    from codec import format, hevc
    from codec.color import rgb_to_ycbcr, to_uint8
    from codec.luma import luma_stream

    cache, stems = tiny_cache
    path = cache / "upscale" / "train" / f"bsds-train-{stems[1]}.npz"
    with np.load(path) as sample:
        assert not bool(sample["loop_filters"]) and not data.UPSCALE_LOOP_FILTERS
        original, quality, stored = sample["original"], int(sample["x265_quality"][0]), dict(sample)
    [(_, source, k, factor)] = [entry for entry in data.training_photos(cache.parent) if entry[0].endswith(stems[1])]
    luma = rgb_to_ycbcr(data.load_photo(source, k, factor))[0]
    assert np.array_equal(original, to_uint8(luma))
    stream = luma_stream(luma, 4)
    tiles = hevc.encode_plane(stream, quality, loop_filters=False)
    assert int(stored["x4_luma_bytes"][0]) == len(format.build_hevc_plane(tiles))
    assert np.array_equal(stored["x4_decoded"][0], hevc.decode_plane(tiles, *stream.shape))
    assert data.up_to_date("upscale", path)
    for name, marker in (("filtered.npz", {"loop_filters": np.array(True)}), ("older.npz", {})):
        np.savez(tmp_path / name, **{key: value for key, value in stored.items() if key != "loop_filters"}, **marker)
        assert not data.up_to_date("upscale", tmp_path / name)


def test_the_upscalers_looks_and_cache_read_streams_coded_as_the_released_upscaler_reads_them(tiny_cache, tmp_path):
    """A look renders a release's network from the same streams; the cache matches the newest
    release's upscaler, and training refuses samples coded otherwise (a cache made in part)."""
    for key, looks in LOOKS.items():
        assert all(REGISTRY[other].loop_filters == REGISTRY[key].loop_filters for other in looks.values())
    assert REGISTRY[RELEASES[-1]["upscale"]].loop_filters == data.UPSCALE_LOOP_FILTERS
    release = RELEASES[-1]  # full-size luma, stage 4: each deblocker's samples are coded as it reads them
    assert REGISTRY[release["deblock"]].loop_filters == data.CODEC_KINDS["codec"]
    assert REGISTRY[release[DEBLOCK_UNFILTERED]].loop_filters == data.CODEC_KINDS["codec_unfiltered"]
    cache, stems = tiny_cache
    mixed = tmp_path / "upscale" / "val"
    mixed.mkdir(parents=True)
    with np.load(cache / "upscale" / "val" / f"bsds-train-{stems[2]}.npz") as sample:
        np.savez(mixed / "old.npz", **{key: value for key, value in sample.items() if key != "loop_filters"})
    with pytest.raises(SystemExit, match="loop-filter settings"):
        upscale.load_samples(tmp_path, "val")


def test_upscaler_training_resumes_and_exports_a_loadable_weight_file(tiny_cache, tmp_path, capsys, monkeypatch):
    cache, _ = tiny_cache
    checkpoints, crops = tmp_path / "checkpoints", {2: 16, 4: 16}
    upscale.train(2, cache, checkpoints, batch=2, validate_every=1, crops=crops)
    final = upscale.train(3, cache, checkpoints, batch=2, validate_every=1, crops=crops)
    assert "resumed at step 2" in capsys.readouterr().err
    assert final["step"] == 3 and {"x2 all", "x4 all", "x2 detail", "x2 grid"} <= set(final["validation"])
    path = export_weights({name: value.half() for name, value in final["state"].items()}, "upscale", tmp_path, 9)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(REGISTRY, "upscale-v9", ModelSpec(Upscalers, path.name, digest, upscale.HPARAMS))
    weights._load.cache_clear()
    network = weights.load_model("upscale-v9", tmp_path)
    assert network.for_scale(4).tail[0].weight.dtype == torch.float32
    assert torch.equal(network.for_scale(4).tail[0].weight, final["state"]["nets.x4.tail.0.weight"].half().float())


def test_a_deeper_upscaler_run_starts_from_the_released_weights_unchanged(tiny_cache, tmp_path, capsys):
    """--init upscale-v1 into HPARAMS' deeper x2 net: the new residual blocks start as the identity,
    so the deepened networks compute what upscale-v1 does, and train from there; its checkpoint
    continues only a run from the same weights."""
    cache, _ = tiny_cache
    released = weights.load_model("upscale-v1")
    deeper = Upscalers(x2={"channels": 32, "blocks": 6}, x4={"channels": 48, "blocks": 6})
    upscale.deepen_into(deeper, released.state_dict())
    image, condition = torch.rand(2, 1, 32, 32), torch.tensor([[0.1], [0.4]])
    with torch.no_grad():
        assert torch.allclose(deeper.for_scale(2)(image, condition), released.for_scale(2)(image, condition),
                              atol=1e-6)
        assert not torch.allclose(released.for_scale(2)(image, condition), image, atol=1e-3)  # no bicubic
    with pytest.raises(ValueError, match="does not fit"):
        upscale.deepen_into(Upscalers(x2={"channels": 40, "blocks": 6}, x4={"channels": 48, "blocks": 6}),
                            released.state_dict())
    run = {"cache": cache, "checkpoints": tmp_path, "batch": 2, "validate_every": 1, "crops": {2: 16, 4: 16}}
    final = upscale.train(1, **run, init="upscale-v1")
    for name, value in released.state_dict().items():  # one step of Adam at 1e-3 from upscale-v1's weights
        assert torch.allclose(final["state"][name], value, atol=2e-3), name
    with pytest.raises(CheckpointError, match="init 'upscale-v1', not None"):
        upscale.train(2, **run)
    assert upscale.train(2, **run, init="upscale-v1")["step"] == 2
    assert "resumed at step 1" in capsys.readouterr().err


@pytest.mark.parametrize("trainer, argv, message", [
    (upscale, ["--init", "deblock-v3"], "invalid choice"),
    (colorize, ["--init", "upscale-v2"], "invalid choice"),
    (colorize, ["--net", "colorize_fine", "--init", "colorize-v2"], "is not a colorize_fine model"),
    (deblock, ["--set", "codec", "--init", "colorize-v2"], "invalid choice"),
    (deblock, ["--set", "codec", "--init", "deblock_jpeg-v2"], "is not a model of --set codec"),
    (deblock, ["--set", "codec", "--init", "deblock-v3", "--fold", "2"], "does not fold 2x2 blocks"),
])
def test_training_refuses_a_start_from_another_model_before_it_trains(trainer, argv, message, tmp_path, capsys):
    """A one-line usage error, not a traceback from loading weights that do not fit the network."""
    with pytest.raises(SystemExit) as exit_info:
        trainer.main([*argv, "--cache", str(tmp_path / "no-cache"), "--checkpoints", str(tmp_path)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before any training or checkpoint


@pytest.mark.parametrize("trainer, argv", [
    (upscale, ["--init", "upscale-v2"]),
    (colorize, ["--init", "colorize-v1"]),
    (deblock, ["--set", "jpeg", "--init", "deblock_jpeg-v1"]),
])
def test_training_takes_a_start_from_its_own_model(trainer, argv, tmp_path):
    """Past the argument check, with its weights loaded: the run stops only at the missing cache."""
    with pytest.raises(SystemExit, match="no cached"):
        trainer.main([*argv, "--cache", str(tmp_path / "no-cache"), "--checkpoints", str(tmp_path)])


def test_the_grid_loss_sees_phases_offset_against_each_other_and_nothing_else():
    target = torch.rand(2, 1, 16, 16)
    grid = torch.zeros(1, 1, 4, 4)
    grid[..., 0, 0] = 0.16  # one phase of the 4x4 sub-pixel grid brighter: its deviation 0.15, the others' 0.01
    assert upscale.phase_error(target + grid.repeat(1, 1, 4, 4), target, 4).item() == pytest.approx(0.3 / 16)
    assert upscale.phase_error(target + 0.1, target, 4).item() == pytest.approx(0.0, abs=1e-7)  # an offset
    noise = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.05  # error, no grid
    assert upscale.phase_error(target + noise, target, 4) < 0.5 * noise.abs().mean()


@pytest.mark.parametrize("along", ["rows", "columns"])
def test_the_grid_loss_along_lines_sees_dots_whose_sign_changes_across_the_crop(along):
    """Dots along an edge: one phase brighter in one half of a 16x32 crop and darker in the other.
    Over the whole crop the phases' means cancel; along the lines the dots repeat on, they do not."""
    dots = torch.zeros(1, 1, 16, 32)
    dots[..., 0::4, 0::4] = 0.25
    if along == "rows":
        dots[..., 8:, :] *= -1  # each row keeps its sign; the columns' means cancel
    else:
        dots[..., :, 16:] *= -1  # each column keeps its sign; the rows' means cancel
    target = torch.full((1, 1, 16, 32), 0.5)
    assert upscale.phase_error(target + dots, target, 4).item() == pytest.approx(0.0, abs=1e-7)
    # a line through dots: phases 0.25, 0, 0, 0 deviate 0.1875, 0.0625, 0.0625, 0.0625 from their mean
    # (0.09375 on average); one line in 4 goes through dots; the other direction's lines add nothing
    assert upscale.phase_error(target + dots, target, 4, lines=True).item() == pytest.approx(0.09375 / 4 / 2)
    assert upscale.phase_error(target + 0.1, target, 4, lines=True).item() == pytest.approx(0.0, abs=1e-7)


def test_perceptual_fine_tuning_starts_from_the_released_upscaler_and_resumes(tiny_cache, tmp_path, capsys):
    cache, _ = tiny_cache
    checkpoints, crops = tmp_path / "checkpoints", {2: 16, 4: 16}
    upscale.train_perceptual(1, cache, checkpoints, batch=2, validate_every=1, crops=crops)
    final = upscale.train_perceptual(2, cache, checkpoints, batch=2, validate_every=1, crops=crops)
    assert "resumed at step 1" in capsys.readouterr().err
    assert final["step"] == 2 and {"x4 detail", "x4 grid"} <= set(final["validation"])
    released = weights.load_model(RELEASES[-1]["upscale"]).state_dict()
    changed = [name for name, value in final["state"].items() if not torch.equal(value, released[name])]
    assert changed and set(final["state"]) == set(released)


def test_bf16_upscaler_runs_compute_in_bfloat16_and_export_the_standard_layout(tiny_cache, tmp_path, monkeypatch):
    """--bf16 for both looks: the upscalers' and the discriminators' training passes run in bfloat16,
    validation in float32, and the final state has the standard layout a float32 run exports."""
    from codec.models.sr_net import Discriminator, ResidualBlock

    cache, _ = tiny_cache
    seen = []
    block_forward, discriminator_features = ResidualBlock.forward, Discriminator.features

    def recording_forward(self, x: torch.Tensor) -> torch.Tensor:
        output = block_forward(self, x)
        seen.append(("upscaler", self.training, output.dtype))
        return output

    def recording_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        outputs = discriminator_features(self, image)
        seen.append(("discriminator", self.training, outputs[-1].dtype))
        return outputs

    monkeypatch.setattr(ResidualBlock, "forward", recording_forward)  # every instance, the cached release's too
    monkeypatch.setattr(Discriminator, "features", recording_features)
    crops = {2: 16, 4: 16}
    runs = {"upscale.pt": lambda: upscale.train(1, cache, tmp_path, batch=2, validate_every=1, crops=crops,
                                                bf16=True),
            "upscale_perceptual.pt": lambda: upscale.train_perceptual(1, cache, tmp_path, batch=2, validate_every=1,
                                                                      crops=crops, grid_lines=True, bf16=True)}
    for checkpoint, run in runs.items():
        seen.clear()
        final = run()
        assert {dtype for net, training, dtype in seen if net == "upscaler" and training} == {torch.bfloat16}
        assert {dtype for net, training, dtype in seen if net == "upscaler" and not training} == {torch.float32}
        assert {dtype for net, _, dtype in seen if net == "discriminator"} == (
            {torch.bfloat16} if checkpoint == "upscale_perceptual.pt" else set())
        assert all(value.is_contiguous() for value in final["state"].values())
        assert torch.load(tmp_path / checkpoint, weights_only=False)["settings"]["bf16"] is True


def test_the_upscaler_command_line_passes_its_loss_and_precision_options_on(monkeypatch, tmp_path):
    calls = {}

    def recorder(name: str):
        def record(*args, **kwargs) -> dict:
            calls[name] = kwargs
            return {"step": 0, "validation": {}, "state": {}}
        return record

    monkeypatch.setattr(upscale, "train", recorder("fidelity"))
    monkeypatch.setattr(upscale, "train_perceptual", recorder("perceptual"))
    folders = ["--cache", str(tmp_path), "--checkpoints", str(tmp_path)]
    upscale.main(["--bf16", *folders])
    upscale.main(["--look", "perceptual", "--grid-lines", "--grid-weight", "4", "--bf16", *folders])
    assert calls["fidelity"]["bf16"] is True
    assert {name: calls["perceptual"][name] for name in ("grid_lines", "grid_weight", "bf16")} == {
        "grid_lines": True, "grid_weight": 4.0, "bf16": True}
    upscale.main(["--look", "perceptual", *folders])
    assert {name: calls["perceptual"][name] for name in ("grid_lines", "grid_weight", "bf16")} == {
        "grid_lines": False, "grid_weight": 1.0, "bf16": False}


@pytest.mark.parametrize("option, message", [
    (["--grid-lines"], "are for --look perceptual"),
    (["--grid-weight", "1"], "are for --look perceptual"),
    (["--look", "perceptual", "--grid-weight", "-1"], "is negative"),
])
def test_the_grid_loss_options_are_refused_where_they_cannot_apply(option, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        upscale.main([*option, "--cache", str(tmp_path), "--checkpoints", str(tmp_path)])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["codec", "codec_unfiltered"])
def test_codec_samples_hold_full_size_luma_coded_as_for_the_deblocker_they_train(tiny_cache, tmp_path, kind):
    """Stage 4 is off while the samples are made, yet their full-size luma is coded with HEVC's
    loop filters (``codec``) or without them (``codec_unfiltered``), as the encoder codes it for
    the deblocker each kind trains; a sample of the other kind is out of date."""
    from codec.color import rgb_to_ycbcr
    from codec.luma import encode_luma

    cache, stems = tiny_cache
    filters = data.CODEC_KINDS[kind]
    photos = {entry[0]: entry for entry in data.training_photos(cache.parent)}
    full_size = 0
    for stem in stems[:2]:
        _, source, k, factor = photos[f"bsds-train-{stem}"]
        luma = rgb_to_ycbcr(data.load_photo(source, k, factor))[0]
        with np.load(cache / kind / "train" / f"bsds-train-{stem}.npz") as sample:
            for index in np.flatnonzero(sample["scale"] == 1):
                quality = int(sample["x265_quality"][index])
                coded = {setting: encode_luma(luma, 1, quality, loop_filters=setting) for setting in (True, False)}
                assert coded[True].payload != coded[False].payload
                assert int(sample["luma_bytes"][index]) == len(coded[filters].payload)
                assert np.array_equal(sample["decoded"][index], coded[filters].stream)
                full_size += 1
    assert full_size
    other = next(name for name in data.CODEC_KINDS if name != kind)
    (tmp_path / other).mkdir()
    misplaced = tmp_path / other / "sample.npz"
    misplaced.write_bytes((cache / kind / "train" / f"bsds-train-{stems[0]}.npz").read_bytes())
    assert data.up_to_date(kind, cache / kind / "train" / f"bsds-train-{stems[0]}.npz")
    assert not data.up_to_date(other, misplaced)


@pytest.mark.parametrize("kind", ["codec_x1", "codec_unfiltered_x1"])
def test_x1_samples_hold_luma_coded_full_size_at_the_low_qualities(tiny_cache, kind):
    """The ``_x1`` kinds: at qualities 10-25, where the encoder codes most training photos' luma
    at x2 or x4, the luma coded full size with the kind's loop-filter setting, as stage 4 sees it
    in photos whose luma the encoder keeps full size there."""
    from codec.color import rgb_to_ycbcr
    from codec.luma import encode_luma

    cache, stems = tiny_cache
    photos = {entry[0]: entry for entry in data.training_photos(cache.parent)}
    for stem in stems[:2]:
        _, source, k, factor = photos[f"bsds-train-{stem}"]
        luma = rgb_to_ycbcr(data.load_photo(source, k, factor))[0]
        with np.load(cache / kind / "train" / f"bsds-train-{stem}.npz") as sample:
            assert sample["scale"].tolist() == [1] * len(data.X1_QUALITY_BANDS)
            assert all(low <= quality <= high
                       for quality, (low, high) in zip(sample["quality"].tolist(), data.X1_QUALITY_BANDS))
            for index, quality in enumerate(sample["x265_quality"].tolist()):
                coded = encode_luma(luma, 1, quality, loop_filters=data.CODEC_KINDS[kind])
                assert np.array_equal(sample["decoded"][index], coded.stream)
                assert int(sample["luma_bytes"][index]) == len(coded.payload)
        assert data.up_to_date(kind, cache / kind / "train" / f"bsds-train-{stem}.npz")


def test_deblocker_training_adds_the_x1_samples_with_x1(tiny_cache, tmp_path, capsys):
    """--x1: the set's samples and its ``_x1`` kind's, in training and validation; a run with them
    is not resumed without them."""
    cache, _ = tiny_cache
    counts = {split: [len(deblock.load_samples(cache, kind, split, scales=(1,)))
                      for kind in ("codec_unfiltered", "codec_unfiltered_x1")] for split in ("train", "val")}
    deblock.train("codec_unfiltered", 1, cache, tmp_path, crop=32, batch=2, validate_every=1, scales=(1,), x1=True)
    assert (f"{sum(counts['train'])} training, {sum(counts['val'])} validation samples"
            in capsys.readouterr().err)
    with pytest.raises(CheckpointError, match="x1 True, not None"):
        deblock.train("codec_unfiltered", 2, cache, tmp_path, crop=32, batch=2, validate_every=1, scales=(1,))


def test_x1_is_refused_for_the_jpeg_set(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        deblock.main(["--set", "jpeg", "--x1", "--cache", str(tmp_path), "--checkpoints", str(tmp_path)])
    assert stopped.value.code == 2 and "--x1 is for the codec sets" in capsys.readouterr().err


def test_the_colorizer_cache_holds_hints_coded_as_the_encoder_codes_them(tiny_cache):
    cache, stems = tiny_cache
    with np.load(cache / "color" / "train" / f"bsds-train-{stems[1]}.npz") as sample, \
            np.load(cache / "codec" / "train" / f"bsds-train-{stems[1]}.npz") as codec_sample:
        assert np.array_equal(sample["luma"], codec_sample["decoded"])  # the luma stage 3 really sees
        variants = len(sample["layout"])
        assert sample["classical"].shape == (variants, 2, 48, 68) and sample["original"].shape == (2, 48, 68)
        assert {"grid", "segments"} == set(sample["layout"].tolist())
        assert variants == 4 * 4  # 3 grid factors and segment hints at each of the 4 qualities
        spacings = sorted({round(float(v), 2) for v, layout in zip(sample["condition"][:, 1], sample["layout"])
                           if layout == "grid"})
        assert spacings == [0.25, 0.5, 0.75]


def test_a_colorizer_run_starts_from_the_released_weights(tiny_cache, tmp_path):
    """--init colorize-v1: the run starts from the released network (a step at learning rate 0
    leaves it as released; a fresh net would be the classical colorization) and trains from there."""
    cache, _ = tiny_cache
    released = weights.load_model("colorize-v1").state_dict()
    start = colorize.train(1, cache, tmp_path / "a", batch=2, crop=16, validate_every=1, init="colorize-v1",
                           learning_rate=0.0)
    assert all(torch.equal(start["state"][name], tensor) for name, tensor in released.items())
    moved = colorize.train(2, cache, tmp_path / "b", batch=2, crop=16, validate_every=1, init="colorize-v1")
    assert not torch.equal(moved["state"]["tail.0.weight"], released["tail.0.weight"])


def test_colorizer_training_resumes_and_exports_a_loadable_weight_file(tiny_cache, tmp_path, capsys, monkeypatch):
    cache, _ = tiny_cache
    checkpoints = tmp_path / "checkpoints"
    colorize.train(2, cache, checkpoints, batch=2, crop=16, validate_every=1)
    final = colorize.train(3, cache, checkpoints, batch=2, crop=16, validate_every=1)
    assert "resumed at step 2" in capsys.readouterr().err
    assert final["step"] == 3 and {"all", "segments", "grid x8"} <= set(final["validation"])
    path = export_weights(final["state"], "colorize", tmp_path, 9)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    hparams = colorize.NETS["colorize"][0]
    monkeypatch.setitem(REGISTRY, "colorize-v9", ModelSpec(HintColorizer, path.name, digest, hparams))
    weights._load.cache_clear()
    network = weights.load_model("colorize-v9", tmp_path)
    assert torch.equal(network.tail[0].weight, final["state"]["tail.0.weight"])


def test_the_fine_colorizer_trains_on_thumbnails_at_one_half_alone(tiny_cache, tmp_path):
    """--net colorize_fine: the network of the release's COLORIZE_FINE entry, trained (here in
    bfloat16) and validated only on grid hints at 1/2, and exported in the standard weight layout."""
    cache, _ = tiny_cache
    final = colorize.train(2, cache, tmp_path, batch=2, crop=16, validate_every=1, model_id="colorize_fine",
                           bf16=True)
    assert set(final["validation"]) == {"all", "grid x2"}
    network = HintColorizer(**colorize.NETS["colorize_fine"][0])
    network.load_state_dict(final["state"])
    assert network.scale == 2 and all(tensor.is_contiguous() for tensor in final["state"].values())
    assert (tmp_path / "colorize_fine.pt").exists()


def test_balanced_training_weighs_each_sample_by_its_own_error(tiny_cache, tmp_path, capsys, monkeypatch):
    """--balance: a sample whose input is twice as far from its target (4 times the squared error)
    weighs a quarter as much, the weights average 1, and the training loss is the batch's squared
    errors weighted so (plain MSE without it); resuming with the other loss says so."""
    target = np.zeros((1, 8, 8), np.float32)
    samples = [deblock.Sample(target + np.float32(error), target, (0.0, 0.0, 0.0), 30) for error in (0.1, 0.2, 0.4)]
    deblock.balance_weights(samples)
    weights = [sample.weight for sample in samples]
    assert np.isclose(np.mean(weights), 1.0) and np.allclose(weights[:2], [16 * weights[2], 4 * weights[2]])
    inputs, _, _, batch_weights = deblock.random_batch(samples, np.random.default_rng(0), 16, 8)
    errors = inputs.mean(dim=(1, 2, 3)).numpy()
    assert np.allclose(batch_weights.numpy(), [weights[[0.1, 0.2, 0.4].index(round(float(e), 1))] for e in errors])

    cache, _ = tiny_cache
    seen: dict = {}
    batch_of, forward = deblock.random_batch, Deblocker.forward

    def watched_forward(self, *args):
        output = forward(self, *args)
        if torch.is_grad_enabled():  # a training step's, not validation's
            seen["output"] = output.detach()
        return output

    monkeypatch.setattr(deblock, "random_batch", lambda *args: seen.setdefault("batch", batch_of(*args)))
    monkeypatch.setattr(Deblocker, "forward", watched_forward)
    monkeypatch.setattr(deblock, "optimise", lambda loss, *_: seen.setdefault("loss", loss.item()))
    for balance in (False, True):
        seen.clear()
        deblock.train("codec_unfiltered", 1, cache, tmp_path / str(balance), crop=32, batch=4, validate_every=1,
                      scales=(1,), x1=True, balance=balance)
        _, _, targets, weights = seen["batch"]
        errors = torch.mean((seen["output"] - targets) ** 2, dim=(1, 2, 3))
        assert np.isclose(seen["loss"], float(torch.mean(weights * errors) if balance else torch.mean(errors)))
        assert torch.allclose(weights, torch.ones(4)) != balance
    capsys.readouterr()
    deblock.train("codec_unfiltered", 2, cache, tmp_path / "False", crop=32, batch=4, validate_every=1,
                  scales=(1,), x1=True, balance=True)
    assert "balance None -> True" in capsys.readouterr().err
    deblock.train("codec_unfiltered", 3, cache, tmp_path / "False", crop=32, batch=4, validate_every=1,
                  scales=(1,), x1=True)
    assert "balance True -> None" in capsys.readouterr().err  # a setting dropped is said too
