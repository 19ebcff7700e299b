"""Prototypical contrastive loss, ProtoNCE (PCL, Li et al. ICLR 2021; UEM Eq. 7).

L_PNCE = mean_i −log [ exp(f_i·p_{c_i}/τ) / Σ_c exp(f_i·p_c/τ) ]: each feature is pulled to its
cluster's prototype and pushed from every other prototype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProtoNCE(nn.Module):
    """Cross-entropy of ``softmax(features · prototypesᵀ / τ)`` against cluster targets."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, features: torch.Tensor, prototypes: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        """``features [B, D]``, ``prototypes [K, D]``, ``targets [B]`` in ``0..K-1`` → scalar."""
        if features.shape[1] != prototypes.shape[1]:
            raise ValueError(f"features have dimension {features.shape[1]} but prototypes "
                             f"{prototypes.shape[1]}")
        if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= len(prototypes)):
            raise ValueError(f"targets must lie in 0..{len(prototypes) - 1}")
        logits = features @ prototypes.t() / self.temperature
        return F.cross_entropy(logits, targets.long())
