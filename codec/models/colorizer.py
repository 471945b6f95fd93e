"""The colorizer of decoder stage 3: a pure network, no loading code."""

from __future__ import annotations

import torch
from torch import nn

from .sr_net import ResidualBlock


class HintColorizer(nn.Module):
    """Corrects the classical colorization (hints upsampled or filled) using the full-size luma.

    Pixel-unshuffle folds each ``fold`` x ``fold`` block of (luma, classical Cb, classical Cr)
    into channels, so the convolutions run at 1/fold resolution with a wide context (chroma
    hints are 2-48 pixels apart) while each block's luma edges stay visible in its channels.
    Residual blocks, then a sub-pixel convolution predict a correction added to the classical
    Cb and Cr; that conv starts at zero, so an untrained net is the classical colorization.
    Constant condition planes say which hints the classical picture came from (layout, spacing,
    bits per hint sample).

    Args:
        fold (int, default 4): the block side folded into channels.
        condition_channels (int, default 3): constant planes describing the hints.
        channels (int, default 40): width of the hidden layers.
        blocks (int, default 4): residual blocks.
        keep_mean (bool, default False): how stage 3 applies the network (``forward`` ignores it):
            its correction is made zero-mean over the whole image, so the colorization keeps the
            classical one's mean Cb and Cr, the hints' own; tiles cannot see the whole image, so
            ``codec.chroma.finish_colors`` does it.

    Tensor contract: ``forward(image, condition)`` with image (N, 3, H, W) float32 in [0, 1] (luma,
    classical Cb, classical Cr), H and W multiples of ``fold``, and condition (N, condition_channels)
    float32; returns (N, 2, H, W) float32 Cb and Cr (not clipped). ``RADIUS``: full-size pixels of
    context each side of an output pixel; ``out_channels``: 2.
    """

    out_channels = 2

    def __init__(self, fold: int = 4, condition_channels: int = 3, channels: int = 40, blocks: int = 4,
                 keep_mean: bool = False) -> None:
        super().__init__()
        self.keep_mean = keep_mean
        self.scale = fold  # the runtime aligns tiles to it
        self.RADIUS = fold * (2 * blocks + 3)  # 3x3 convs at 1/fold resolution: head, blocks, fuse, tail
        self.unshuffle = nn.PixelUnshuffle(fold)
        self.head = nn.Sequential(nn.Conv2d(3 * fold * fold + condition_channels, channels, 3, padding=1),
                                  nn.PReLU(channels))
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.fuse = nn.Conv2d(channels, channels, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(channels, 2 * fold * fold, 3, padding=1), nn.PixelShuffle(fold))
        nn.init.zeros_(self.tail[0].weight)
        nn.init.zeros_(self.tail[0].bias)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        folded = self.unshuffle(image - 0.5)  # chroma 0.5 is gray: centred inputs
        planes = condition[:, :, None, None].expand(-1, -1, *folded.shape[2:])
        features = self.head(torch.cat([folded, planes], dim=1))
        features = features + self.fuse(self.blocks(features))
        return image[:, 1:] + self.tail(features)
