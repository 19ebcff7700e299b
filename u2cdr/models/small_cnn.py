"""A small convolutional backbone for 28×28 digit images, sized to train on a CPU in seconds.

The offline ``digits`` benchmark (MNIST ↔ UCI digits) must run its whole default grid in a few
CPU minutes, which a ResNet cannot; three conv–BN–ReLU stages with two 2× poolings and a global
average pool keep the usual inductive biases at a fraction of the cost.
"""
from __future__ import annotations

import torch
from torch import nn

from u2cdr.registry import BACKBONES


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


@BACKBONES.register_module(name="small_cnn")
class SmallCNN(nn.Module):
    """``[B, in_channels, H, W] -> [B, 4·width]``; 28×28 → 14×14 → 7×7 → global pool.

    Args:
        in_channels: 1 for grey digits, 3 for colour images.
        width: channels of the first stage; later stages use 2·width and 4·width.

    Attributes:
        out_dim: ``4 * width``, the pooled feature width.
    """

    def __init__(self, in_channels: int = 1, width: int = 64) -> None:
        super().__init__()
        if in_channels < 1 or width < 1:
            raise ValueError(f"in_channels and width must be positive, got in_channels={in_channels}, "
                             f"width={width}")
        self.features = nn.Sequential(
            _conv_block(in_channels, width), nn.MaxPool2d(2),
            _conv_block(width, 2 * width), nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim: int = 4 * width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W] -> [B, out_dim]`` pooled features."""
        return self.features(images)
