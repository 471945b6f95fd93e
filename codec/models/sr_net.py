"""The upscaler of decoder stage 2 (SRResNet family): a pure network, no loading code."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """3x3 conv -> PReLU -> 3x3 conv, added to its input (SRResNet's block, without batch norm).

    Args:
        channels (int): channels in, inside and out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upscaler(nn.Module):
    """Sharpens a bicubic upscale of a decoded low-resolution luma stream (one net per scale).

    The input is the classical stage-2 output, the stream upscaled by bicubic to full size;
    pixel-unshuffle folds each ``scale`` x ``scale`` block into channels, so every convolution runs
    at the stream's resolution on the bicubic picture's own pixel grid. Residual blocks, then a
    sub-pixel convolution (conv to scale**2 channels, pixel shuffle) predict a correction added to
    the bicubic picture; that conv starts at zero, so an untrained net is the bicubic baseline.
    Constant condition planes say how strongly the stream was coded.

    Args:
        scale (int): 2 or 4, the factor between full size and the stream.
        condition_channels (int, default 1): constant planes of coding strength.
        channels (int, default 32): width of the hidden layers.
        blocks (int, default 4): residual blocks.

    Tensor contract: ``forward(image, condition)`` with image (N, 1, H, W) float32 in [0, 1], H and
    W multiples of ``scale``, and condition (N, condition_channels) float32; returns (N, 1, H, W)
    float32 (not clipped). ``RADIUS``: full-size pixels of context each side of an output pixel.
    """

    def __init__(self, scale: int = 2, condition_channels: int = 1, channels: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.scale = scale
        # 3x3 convs at stream resolution (head, blocks, fuse, tail); valid for windows aligned to the scale
        self.RADIUS = scale * (2 * blocks + 3)
        self.unshuffle = nn.PixelUnshuffle(scale)
        self.head = nn.Sequential(nn.Conv2d(scale * scale + condition_channels, channels, 3, padding=1),
                                  nn.PReLU(channels))
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.fuse = nn.Conv2d(channels, channels, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(channels, scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        nn.init.zeros_(self.tail[0].weight)
        nn.init.zeros_(self.tail[0].bias)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        folded = self.unshuffle(image)
        planes = condition[:, :, None, None].expand(-1, -1, *folded.shape[2:])
        features = self.head(torch.cat([folded, planes], dim=1))
        features = features + self.fuse(self.blocks(features))
        return image + self.tail(features)


class Upscalers(nn.Module):
    """The stage-2 networks of one weight file: an ``Upscaler`` for each stream scale.

    Args:
        **nets (dict): one entry per scale served, ``x<scale>`` -> that ``Upscaler``'s keyword
            arguments other than ``scale``, e.g. ``x2={"channels": 32, "blocks": 4}``.
    """

    def __init__(self, **nets: dict) -> None:
        super().__init__()
        self.nets = nn.ModuleDict({name: Upscaler(int(name[1:]), **hparams) for name, hparams in nets.items()})

    def for_scale(self, scale: int) -> Upscaler:
        """The network of streams at ``scale``; KeyError if this file has none."""
        return self.nets[f"x{scale}"]


class Discriminator(nn.Module):
    """SRGAN's discriminator, small: tells an original luma crop from an upscaled one (training only).

    Strided 3x3 convs with LeakyReLU halve the crop four times, then a 1x1 conv gives one logit per
    16x16 patch (a patch discriminator). ``features`` returns every stage's activations, the
    feature-matching loss of the perceptual weights (a loss that needs no downloaded network).

    Args:
        channels (int, default 32): width of the first two stages; the next are 2x and 4x as wide.

    Tensor contract: ``forward(image)`` with image (N, 1, H, W) float32 in [0, 1], H and W
    multiples of 16; returns (N, 1, H / 16, W / 16) float32 logits.
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        widths = (channels, channels, 2 * channels, 4 * channels, 4 * channels)
        self.stages = nn.ModuleList([nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1), nn.LeakyReLU(0.2))])
        for width_in, width_out in zip(widths, widths[1:]):
            self.stages.append(nn.Sequential(nn.Conv2d(width_in, width_out, 3, stride=2, padding=1),
                                             nn.LeakyReLU(0.2)))
        self.logit = nn.Conv2d(widths[-1], 1, 1)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each stage, finest first."""
        outputs, x = [], image
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(image)[-1])
