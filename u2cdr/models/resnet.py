"""torchvision ResNets as feature extractors: global-average-pooled trunk, no classifier.

UEM, UCDIR and CoDA all use ResNet-50; the weights come only from a local file
(``checkpoint=``), never from torchvision's download (``weights=None`` always).
"""
from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn
from torchvision import models

from u2cdr.models.checkpoints import adapt_first_conv, read_checkpoint
from u2cdr.registry import BACKBONES

logger = logging.getLogger("u2cdr")

_VALID_IN_CHANNELS = (1, 3)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet whose ``fc`` is removed: ``[B, C, H, W] -> [B, out_dim]``.

    Attributes:
        out_dim: width of the pooled features (512 for ResNet-18, 2048 for ResNet-50).
        pretrained_head_state: the ``fc`` weights of the checkpoint (with ``fc.`` stripped),
            kept aside so that ``Encoder`` can load them into a projection head whose shapes
            match (MoCo-v2's MLP head, as UCDIR does); empty without a checkpoint.
        checkpoint_report: plain-data summary of what was loaded, for ``describe()``.
    """

    def __init__(self, arch: Callable[..., models.ResNet], in_channels: int = 3,
                 checkpoint: str | None = None) -> None:
        super().__init__()
        if in_channels not in _VALID_IN_CHANNELS:
            raise ValueError(f"in_channels={in_channels!r} is not supported; valid: {_VALID_IN_CHANNELS}")
        trunk = arch(weights=None)
        if in_channels != 3:
            old = trunk.conv1
            trunk.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                    stride=old.stride, padding=old.padding, bias=False)
        self.out_dim: int = trunk.fc.in_features
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.in_channels = in_channels
        self.pretrained_head_state: dict[str, torch.Tensor] = {}
        self.checkpoint_report: dict = {"checkpoint": None}
        if checkpoint is not None:
            self._load(checkpoint)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W] -> [B, out_dim]`` pooled features."""
        return self.trunk(images)

    def _load(self, checkpoint: str) -> None:
        weights = read_checkpoint(checkpoint)
        trunk_state = dict(weights.trunk)
        first_conv = trunk_state.get("conv1.weight")
        first_conv_adapted = first_conv is not None and first_conv.shape[1] != self.in_channels
        if first_conv is not None:
            trunk_state["conv1.weight"] = adapt_first_conv(first_conv, self.in_channels)
        expected = self.trunk.state_dict()
        shape_mismatch = sorted(key for key, value in trunk_state.items()
                                if key in expected and expected[key].shape != value.shape)
        if shape_mismatch:
            raise ValueError(f"checkpoint {weights.path!r} does not fit this backbone: shape "
                             f"mismatch for {shape_mismatch[:5]} (e.g. {shape_mismatch[0]}: "
                             f"{tuple(trunk_state[shape_mismatch[0]].shape)} vs "
                             f"{tuple(expected[shape_mismatch[0]].shape)}); wrong architecture?")
        if not set(trunk_state) & set(expected):
            raise ValueError(f"checkpoint {weights.path!r} has no key of this ResNet "
                             f"(first keys: {list(weights.trunk)[:5]}); expected torchvision "
                             "names such as 'conv1.weight', 'layer1.0.conv1.weight'")
        result = self.trunk.load_state_dict(trunk_state, strict=False)
        logger.info("backbone checkpoint %s (%s format): loaded %d tensors; missing keys: %s; "
                    "unexpected keys: %s; dropped non-query-encoder keys: %d; fc keys kept for the "
                    "projection head: %s", weights.path, weights.source_format,
                    len(trunk_state) - len(result.unexpected_keys), result.missing_keys or "none",
                    result.unexpected_keys or "none", len(weights.dropped),
                    sorted(weights.head) or "none")
        self.pretrained_head_state = weights.head
        self.checkpoint_report = {
            "checkpoint": weights.path,
            "format": weights.source_format,
            "missing_keys": list(result.missing_keys),
            "unexpected_keys": list(result.unexpected_keys),
            "first_conv_adapted": first_conv_adapted,
        }


@BACKBONES.register_module(name="resnet18")
class ResNet18(ResNetBackbone):
    """ResNet-18 trunk, 512-d pooled features."""

    def __init__(self, in_channels: int = 3, checkpoint: str | None = None) -> None:
        super().__init__(models.resnet18, in_channels=in_channels, checkpoint=checkpoint)


@BACKBONES.register_module(name="resnet50")
class ResNet50(ResNetBackbone):
    """ResNet-50 trunk, 2048-d pooled features (UEM's backbone)."""

    def __init__(self, in_channels: int = 3, checkpoint: str | None = None) -> None:
        super().__init__(models.resnet50, in_channels=in_channels, checkpoint=checkpoint)
