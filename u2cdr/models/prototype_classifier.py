"""Prototype (cosine) classifier: the weight-normalised head of DANCE, OVANet's open-set heads and UniOT.

``logits = normalize(x) · normalize(W)ᵀ / T``. Each row of ``W`` is a class prototype on the unit
sphere, so a logit is a scaled cosine and the weights can start as K-means centroids. The released
codes (``ResClassifier_MME`` in DANCE/OVANet, ``ProtoCLS`` in UniOT) renormalise ``W`` after every
optimiser step; normalising inside ``forward`` gives the same outputs without a post-step hook.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PrototypeClassifier(nn.Module):
    """``[B, in_dim] → [B, num_classes]`` scaled cosine similarities to learnable prototypes.

    Args:
        in_dim: feature width.
        num_classes: number of prototypes (classes).
        temperature: T dividing the cosines (0.05 in DANCE and OVANet's ``temp``).
    """

    def __init__(self, in_dim: int, num_classes: int, temperature: float = 0.05) -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 1:
            raise ValueError(f"in_dim and num_classes must be >= 1, got {in_dim} and {num_classes}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.weight = nn.Parameter(F.normalize(torch.randn(num_classes, in_dim), dim=1))

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    def prototypes(self) -> torch.Tensor:
        """``[num_classes, in_dim]`` unit-norm prototypes."""
        return F.normalize(self.weight, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[1] != self.weight.shape[1]:
            raise ValueError(f"features have dimension {features.shape[1]} but the classifier "
                             f"expects {self.weight.shape[1]}")
        return F.normalize(features, dim=1) @ self.prototypes().t() / self.temperature

    @torch.no_grad()
    def set_prototypes(self, prototypes: torch.Tensor) -> None:
        """Overwrite the prototypes, e.g. with K-means centroids ``[num_classes, in_dim]``."""
        if prototypes.shape != self.weight.shape:
            raise ValueError(f"prototypes must have shape {tuple(self.weight.shape)}, got "
                             f"{tuple(prototypes.shape)}")
        self.weight.copy_(F.normalize(prototypes.to(self.weight), dim=1))
