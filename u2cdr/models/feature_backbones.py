"""Backbones of the frozen-feature mode: ``identity`` and ``pixels``.

``identity`` is what a method's backbone becomes in a cell whose dataset gives vectors: the
vectors *are* the backbone output, so only what sits on top (projection head, domain
classifier, prototypes) trains, and ``pretrained`` retrieves with the vectors as they are.

``pixels`` flattens an image into its raw pixel values. As the backbone of
``frozen_features`` it turns an image dataset into a raw-pixel feature dataset (the
``digits_pixels`` benchmark), the plainest possible "pretrained" representation.
"""
from __future__ import annotations

import torch
from torch import nn

from u2cdr.registry import BACKBONES


@BACKBONES.register_module(name="identity")
class IdentityBackbone(nn.Module):
    """``[B, in_dim] -> [B, in_dim]`` unchanged; ``in_dim`` is the width of the given vectors."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1:
            raise ValueError(f"identity backbone: in_dim must be an int >= 1, got {in_dim!r}")
        self.out_dim: int = in_dim

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        if vectors.dim() != 2 or vectors.shape[1] != self.out_dim:
            raise ValueError(f"identity backbone expects [B, {self.out_dim}] feature vectors, got "
                             f"{tuple(vectors.shape)}; image inputs need an image backbone")
        return vectors


@BACKBONES.register_module(name="pixels")
class PixelBackbone(nn.Module):
    """``[B, channels, image_size, image_size] -> [B, channels·image_size²]`` raw pixel values.

    Args:
        image_size: the square side images are resized to before flattening.
        channels: 1 (grey) or 3 (RGB).
    """

    def __init__(self, image_size: int = 16, channels: int = 1) -> None:
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"pixels backbone: image_size must be an int >= 8, got {image_size!r}")
        if channels not in (1, 3):
            raise ValueError(f"pixels backbone: channels must be 1 or 3, got {channels!r}")
        self.image_size = image_size
        self.channels = channels
        self.out_dim: int = channels * image_size * image_size

    @classmethod
    def input_spec(cls, image_size: int = 16, channels: int = 1) -> dict:
        """The image size and channels the flattening expects (normalisation: the dataset's)."""
        return {"image_size": image_size, "channels": channels}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"pixels backbone expects images of shape {expected}, got "
                             f"{tuple(images.shape[1:])}")
        return images.flatten(1)
