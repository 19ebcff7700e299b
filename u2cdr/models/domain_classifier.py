"""The domain discriminator g_ω of adversarial alignment: two fully-connected layers.

UEM §3.2 says only "two fully-connected layers"; the hidden width is a config choice
(default 256, DANN-sized for small features).
"""
from __future__ import annotations

import torch
from torch import nn


class DomainClassifier(nn.Module):
    """Linear(in, hidden) → ReLU → Linear(hidden, 1): a logit for "from domain A"."""

    def __init__(self, in_dim: int, hidden_dim: int = 256) -> None:
        super().__init__()
        if in_dim < 1 or hidden_dim < 1:
            raise ValueError(f"in_dim and hidden_dim must be >= 1, got {in_dim} and {hidden_dim}")
        self.layers = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
                                    nn.Linear(hidden_dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, in_dim]`` → logits ``[B]``."""
        return self.layers(features).squeeze(-1)
