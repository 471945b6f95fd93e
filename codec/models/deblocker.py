"""The deblocking CNN of decoder stage 4 (and of ``nnc restore``): a pure network, no loading code."""

from __future__ import annotations

import torch
from torch import nn


class ConvUnit(nn.Module):
    """3x3 conv -> 1x1 conv -> PReLU -> 3x3 conv -> PReLU; spatial size kept.

    Args:
        in_channels (int): channels in.
        channels (int): channels out (and inside).
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.Conv2d(channels, channels, 1),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.PReLU(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Deblocker(nn.Module):
    """Removes coding artefacts: three Conv Units, then 1x1 conv, 5x5 conv, PReLU (the design's network).

    The network predicts a correction that is added to its image input (global residual); its
    last conv starts at zero and its last PReLU at slope 1, so an untrained net is the identity.
    Extra input planes, constant over the image, say how strongly the image was coded. With
    ``fold`` > 1 the input is pixel-unshuffled (each fold x fold block becomes channels) and the
    output pixel-shuffled back, so the same layers run at 1/fold resolution: the hidden convs do
    fold^2 times less work, and the receptive field is fold times wider.

    Args:
        image_channels (int, default 1): planes filtered (1: luma; 3: Y, Cb, Cr).
        condition_channels (int, default 2): constant planes of coding strength, appended to the input.
        channels (int, default 24): width of every hidden layer.
        fold (int, default 1): the block side folded into channels.

    Tensor contract: ``forward(image, condition)`` with image (N, image_channels, H, W) float32
    in [0, 1], H and W multiples of ``fold``, and condition (N, condition_channels) float32;
    returns (N, image_channels, H, W) float32 (not clipped). ``RADIUS``: pixels of context each
    side of an output pixel, 8 * fold (six 3x3 convs and one 5x5 conv at 1/fold resolution; valid
    for windows aligned to the fold).
    """

    def __init__(self, image_channels: int = 1, condition_channels: int = 2, channels: int = 24,
                 fold: int = 1) -> None:
        super().__init__()
        self.scale = fold  # the runtime aligns tiles to it
        self.RADIUS = 8 * fold
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(fold), nn.PixelShuffle(fold)
        block_planes = image_channels * fold * fold
        self.units = nn.Sequential(
            ConvUnit(block_planes + condition_channels, channels),
            ConvUnit(channels, channels),
            ConvUnit(channels, channels),
        )
        self.tail = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.Conv2d(channels, block_planes, 5, padding=2),
            nn.PReLU(block_planes, init=1.0),
        )
        nn.init.zeros_(self.tail[1].weight)
        nn.init.zeros_(self.tail[1].bias)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        folded = self.unshuffle(image)
        planes = condition[:, :, None, None].expand(-1, -1, *folded.shape[2:])
        return image + self.shuffle(self.tail(self.units(torch.cat([folded, planes], dim=1))))
