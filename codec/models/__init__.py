"""REGISTRY of the learned models and RELEASES, the model sets that files name. Codes never come from dict order.

A registry key is ``<model_id>-v<N>``: model id (a stable name) and its version. Each release maps
decoder stages to registry keys; its model version (spec 6) is derived from the weight files'
digests. Releases are only ever appended: every file written by a release decodes forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .colorizer import HintColorizer
from .deblocker import Deblocker
from .sr_net import Upscalers


@dataclass(frozen=True)
class ModelSpec:
    """A learned model: its network class, hyperparameters, weight file name and its SHA-256;
    loop_filters (upscalers and deblockers; chroma thumbnails keep them): whether the luma it
    reads keeps HEVC's loop filters; an upscaler (deblocker) trained on luma coded without
    deblocking and SAO has the encoder code its x2/x4 (full-size) luma that way."""

    cls: type
    weight_file: str
    sha256: str
    hparams: dict = field(default_factory=dict)
    loop_filters: bool = True


_UPSCALERS_V1 = {"x2": {"condition_channels": 1, "channels": 32, "blocks": 4},
                 "x4": {"condition_channels": 1, "channels": 48, "blocks": 6}}  # both looks of upscale-v1
_UPSCALERS_V2 = {"x2": {"condition_channels": 1, "channels": 32, "blocks": 6},
                 "x4": {"condition_channels": 1, "channels": 48, "blocks": 6}}  # upscale-v1's x2 two blocks deeper

REGISTRY: dict[str, ModelSpec] = {
    "deblock-v1": ModelSpec(Deblocker, "deblock-v1-bf59e780.pt",
                            "bf59e780e368bcfd0d986e75c723f9d32e09d6e91130981e62bda97f55aa9627",
                            {"image_channels": 1, "condition_channels": 2, "channels": 24}),
    "deblock-v2": ModelSpec(Deblocker, "deblock-v2-ef1131d7.pt",
                            "ef1131d7806fad07da4c7eaafc471d14786269d7c9b1a4d0b05e7164361fc4a6",
                            {"image_channels": 1, "condition_channels": 3, "channels": 48}),
    "deblock-v3": ModelSpec(Deblocker, "deblock-v3-7d8bc2aa.pt",
                            "7d8bc2aa55465ea78b7ed1dfc5ca53230f669605aaa60ea902855c3347d6f96d",
                            {"image_channels": 1, "condition_channels": 3, "channels": 48}),
    # the design's network on 2x2 blocks folded into channels: twice the context, a quarter of the work
    "deblock-v6": ModelSpec(Deblocker, "deblock-v6-a3a291cb.pt",
                            "a3a291cba2acf5d09f4912f4ded2c01eddc7b1ad40914c33c45bc91dd0b4bb16",
                            {"image_channels": 1, "condition_channels": 3, "channels": 48, "fold": 2}),
    # deblock-v6 trained further on full-size luma coded without HEVC's loop filters (DEBLOCK_UNFILTERED)
    "deblock-v7": ModelSpec(Deblocker, "deblock-v7-e8b27500.pt",
                            "e8b27500b3788de624707489e98ae4005058f3f81c0ad0f7480a6d9b51786b0f",
                            {"image_channels": 1, "condition_channels": 3, "channels": 48, "fold": 2},
                            loop_filters=False),
    # deblock-v7 trained 20,000 steps more, with extra full-size luma at qualities 10-25 (--x1) and each
    # sample's squared error weighted by 1 / its input's (--balance)
    "deblock-v8": ModelSpec(Deblocker, "deblock-v8-f3f54362.pt",
                            "f3f543626be5a24d5f597f57b023c3c6f89d441cc25b582d7f155c26eee72192",
                            {"image_channels": 1, "condition_channels": 3, "channels": 48, "fold": 2},
                            loop_filters=False),
    # deblock-v6 trained 20,000 steps more, with extra full-size luma at qualities 10-25 (--x1) and the
    # balanced loss (--balance), for full-size luma coded with HEVC's loop filters
    "deblock-v9": ModelSpec(Deblocker, "deblock-v9-1aaa1df1.pt",
                            "1aaa1df12fdc2ecf2eee104c8c1a1079eca17b118f68c9206f62f69e992e8236",
                            {"image_channels": 1, "condition_channels": 3, "channels": 48, "fold": 2}),
    "upscale-v1": ModelSpec(Upscalers, "upscale-v1-4d00bf47.pt",
                            "4d00bf4795c968073bb7a5b6e13e832392edf5e4e6bcbc02e3e8850ad3943508", _UPSCALERS_V1),
    "upscale-v2": ModelSpec(Upscalers, "upscale-v2-897110e5.pt",
                            "897110e598e5dec1bef014aee5bbdbc1ae383abaf7191bc21efed8b5fd5e5d33", _UPSCALERS_V2),
    # upscale-v2 trained on streams coded without HEVC's loop filters: the encoder codes x2/x4 luma so
    "upscale-v3": ModelSpec(Upscalers, "upscale-v3-a7472d1b.pt",
                            "a7472d1b5cdf524528ef6c4bb06741f09605c067a919ccc4ce76b8abf7f8f49a", _UPSCALERS_V2,
                            loop_filters=False),
    "colorize-v1": ModelSpec(HintColorizer, "colorize-v1-47c27ced.pt",
                             "47c27ced52733a05b64cbc213dece39e3b90701eb69c5d7c67d379ad5a5d4ace",
                             {"fold": 4, "condition_channels": 3, "channels": 40, "blocks": 4}),
    "colorize-v2": ModelSpec(HintColorizer, "colorize-v2-eb58c9ae.pt",
                             "eb58c9ae9edc6826b9e1ce76d13470d7c9a1958907e84226f3a936fc2ea35c74",
                             {"fold": 4, "condition_channels": 3, "channels": 40, "blocks": 4, "keep_mean": True}),
    # stage 3 on grid thumbnails at 1/2 (COLORIZE_FINE): 2x2 blocks folded, trained on those hints alone
    "colorize_fine-v1": ModelSpec(HintColorizer, "colorize_fine-v1-5bb98237.pt",
                                  "5bb98237b225b28170db37aef7c1aa9becab7f00f1667d0a339d4a8fa3b715de",
                                  {"fold": 2, "condition_channels": 3, "channels": 32, "blocks": 4, "keep_mean": True}),
    # the perceptual look of upscale-v1 (LOOKS): in no release, since no file needs it
    "upscale_perceptual-v1": ModelSpec(Upscalers, "upscale_perceptual-v1-120f0203.pt",
                                       "120f0203363cd3416384c8ed3d58b2648789050cfddc7dd8386f666e624539c9",
                                       _UPSCALERS_V1),
    # the perceptual look of upscale-v2, fine-tuned with a loss against a sub-pixel grid
    "upscale_perceptual-v2": ModelSpec(Upscalers, "upscale_perceptual-v2-11e196b3.pt",
                                       "11e196b3c43bf8f3834645f46f219a7c01e9cae0ae1e1311d8909a2460a553f4",
                                       _UPSCALERS_V2),
    # the perceptual look of upscale-v3 up to nnc 0.12.0, fine-tuned as upscale_perceptual-v2 on streams
    # without loop filters (kept: weight files are only added)
    "upscale_perceptual-v3": ModelSpec(Upscalers, "upscale_perceptual-v3-0322f312.pt",
                                       "0322f3129364613fd81c97a9bfafcb239911b4043c4c87a242cd54772743761b",
                                       _UPSCALERS_V2, loop_filters=False),
    # its successor, with the grid loss along each row and column: fewer dots along edges at x4
    "upscale_perceptual-v4": ModelSpec(Upscalers, "upscale_perceptual-v4-a984ceac.pt",
                                       "a984ceac76984da61d3686791699b0cd64c0d825ce023f1e035cefaa9511c915",
                                       _UPSCALERS_V2, loop_filters=False),
    # nnc restore (JPEG files): in no release, since it decodes no .nnc file
    "deblock_jpeg-v1": ModelSpec(Deblocker, "deblock_jpeg-v1-8681bc53.pt",
                                 "8681bc536ec86407ac686d17499289f4b24450541479470d8698625a71102cfc",
                                 {"image_channels": 3, "condition_channels": 1, "channels": 24}),
    "deblock_jpeg-v2": ModelSpec(Deblocker, "deblock_jpeg-v2-4280daeb.pt",
                                 "4280daebefd464c5fdee984b946d5b4ad753b7135cc55e19c09bcde0960ac192",
                                 {"image_channels": 3, "condition_channels": 1, "channels": 48}),
    "deblock_jpeg-v3": ModelSpec(Deblocker, "deblock_jpeg-v3-cf783beb.pt",
                                 "cf783beb267e3defa5e6ad49918399c4449c612cbf38184ba01b7af833b5ab56",
                                 {"image_channels": 3, "condition_channels": 1, "channels": 48}),
}

# The release entry of stage 4's network for full-size luma coded without HEVC's loop filters (from
# release 10 on, "deblock" being the one for luma coded with them): the encoder codes each file's x1
# luma both ways and keeps the better; the luma stream's parameter sets tell the decoder which it is.
DEBLOCK_UNFILTERED = "deblock_unfiltered"
# The release entry of stage 3's network for grid thumbnails at 1/2 (from release 11 on, "color" being the
# one for every other hint layout): the hints section's thumbnail size tells the decoder which it is.
COLORIZE_FINE = "color_fine"
_SECOND_ENTRIES = {DEBLOCK_UNFILTERED: "deblock", COLORIZE_FINE: "color"}


def stage_of(entry: str) -> str:
    """The decoder stage (a name of ``stages.STAGES``) a release entry belongs to."""
    return _SECOND_ENTRIES.get(entry, entry)


# Stage -> registry key, one dict per release, oldest first. Release 0 (nnc 0.1 and 0.2, model version
# e3b0c442) runs every stage as its classical baseline; release 1 (nnc 0.3) adds the deblocker;
# release 2 (nnc 0.4) has the upscaler and no deblocker; release 3 (nnc 0.5) adds the colorizer;
# release 4 (nnc 0.7, format 1.0) adds deblock-v2, told by each file how strongly to filter (see weights/README.md);
# release 5 (nnc 0.8) has colorize-v2, colorize-v1 trained further; release 6 (nnc 0.9) has upscale-v2,
# upscale-v1 deepened at x2 and trained further (deblock-v2 unchanged: stage 4 runs only on full-size luma);
# release 7 (nnc 0.10) has deblock-v3, deblock-v2 trained further on full-size luma only; release 8
# (nnc 0.11, format 1.1) has upscale-v3, which replaces HEVC's loop filters in x2/x4 luma; release 9
# (nnc 0.12) has deblock-v6, a deblocker on 2x2 blocks trained from scratch (stage 4 3.6 times faster);
# release 10 (nnc 0.13) adds deblock-v7 for full-size luma coded without HEVC's loop filters, chosen per file;
# release 11 (nnc 0.14) adds colorize_fine-v1 for grid thumbnails at 1/2; release 12 (nnc 0.16) has deblock-v8,
# deblock-v7 trained further (more full-size luma at qualities 10-25, a balanced loss), for luma without the
# loop filters; release 13 (nnc 0.17) has deblock-v9, deblock-v6 trained the same way, for luma with them.
RELEASES: tuple[dict[str, str], ...] = (
    {},
    {"deblock": "deblock-v1"},
    {"upscale": "upscale-v1"},  # deblock-v1, trained on bicubic output, harms the upscaler's: -0.06 dB
    {"upscale": "upscale-v1", "color": "colorize-v1"},  # deblock-v1 retrained after the upscaler gained nothing
    {"upscale": "upscale-v1", "color": "colorize-v1", "deblock": "deblock-v2"},
    {"upscale": "upscale-v1", "color": "colorize-v2", "deblock": "deblock-v2"},
    {"upscale": "upscale-v2", "color": "colorize-v2", "deblock": "deblock-v2"},
    {"upscale": "upscale-v2", "color": "colorize-v2", "deblock": "deblock-v3"},
    {"upscale": "upscale-v3", "color": "colorize-v2", "deblock": "deblock-v3"},
    {"upscale": "upscale-v3", "color": "colorize-v2", "deblock": "deblock-v6"},
    {"upscale": "upscale-v3", "color": "colorize-v2", "deblock": "deblock-v6", DEBLOCK_UNFILTERED: "deblock-v7"},
    {"upscale": "upscale-v3", "color": "colorize-v2", COLORIZE_FINE: "colorize_fine-v1", "deblock": "deblock-v6",
     DEBLOCK_UNFILTERED: "deblock-v7"},
    {"upscale": "upscale-v3", "color": "colorize-v2", COLORIZE_FINE: "colorize_fine-v1", "deblock": "deblock-v6",
     DEBLOCK_UNFILTERED: "deblock-v8"},
    {"upscale": "upscale-v3", "color": "colorize-v2", COLORIZE_FINE: "colorize_fine-v1", "deblock": "deblock-v9",
     DEBLOCK_UNFILTERED: "deblock-v8"},
)

# Registry key -> {look: registry key}: other renderings of a release's network that a decoder may
# choose (``--look``). They change no file and no model version, so a later nnc may add or replace one
# (only a file's fidelity output is fixed).
LOOKS: dict[str, dict[str, str]] = {"upscale-v1": {"perceptual": "upscale_perceptual-v1"},
                                    "upscale-v2": {"perceptual": "upscale_perceptual-v2"},
                                    "upscale-v3": {"perceptual": "upscale_perceptual-v4"}}

__all__ = ["COLORIZE_FINE", "DEBLOCK_UNFILTERED", "LOOKS", "REGISTRY", "RELEASES", "ModelSpec", "stage_of", "Deblocker",
           "HintColorizer", "Upscalers"]
