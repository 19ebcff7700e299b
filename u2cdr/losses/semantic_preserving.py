"""Semantic-Preserving Regulariser, SPR (UEM Eq. 14).

Domain-adversarial alignment (Eq. 13) can drag a domain's features anywhere that fools the
discriminator, destroying the category structure stage 1 built. SPR keeps, inside each
domain's mini-batch, every pairwise cosine and Euclidean distance close to what the frozen
stage-1 model ``f'_θ`` gives:

    L_SPR = 1/B² Σ_i Σ_j (cos(f_i, f_j) − cos(f'_i, f'_j))² + (d(f_i, f_j) − d(f'_i, f'_j))²

It is computed separately for domain A and domain B.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_DISTANCE_FLOOR = 1e-12


def pairwise_cosine(features: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` cosine similarities of the rows of ``features`` ``[B, D]``."""
    unit = F.normalize(features, dim=1)
    return unit @ unit.t()


def pairwise_distance(features: torch.Tensor) -> torch.Tensor:
    """``[B, B]`` Euclidean distances; the diagonal is exactly 0 with a zero gradient.

    ``sqrt`` has an infinite derivative at 0, so the diagonal is masked rather than taken
    through the square root (the off-diagonal is floored for the same reason).
    """
    squared = (features.unsqueeze(1) - features.unsqueeze(0)).pow(2).sum(-1)
    off_diagonal = ~torch.eye(len(features), dtype=torch.bool, device=features.device)
    distances = squared.clamp_min(_DISTANCE_FLOOR).sqrt()
    return torch.where(off_diagonal, distances, torch.zeros_like(distances))


class SemanticPreservingLoss(nn.Module):
    """Eq. 14 for one domain's batch: ``forward(features, frozen_features)`` → scalar."""

    def forward(self, features: torch.Tensor, frozen_features: torch.Tensor) -> torch.Tensor:
        """``features`` ``[B, D]`` from ``f_θ``; ``frozen_features`` ``[B, D]`` from ``f'_θ``
        on the same images (no gradient is taken through them)."""
        if features.shape != frozen_features.shape:
            raise ValueError(f"features {tuple(features.shape)} and frozen_features "
                             f"{tuple(frozen_features.shape)} must have the same shape")
        frozen_features = frozen_features.detach()
        cosine_gap = pairwise_cosine(features) - pairwise_cosine(frozen_features)
        distance_gap = pairwise_distance(features) - pairwise_distance(frozen_features)
        return (cosine_gap.pow(2) + distance_gap.pow(2)).mean()
