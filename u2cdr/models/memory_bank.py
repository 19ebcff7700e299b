"""Per-domain momentum memory bank (UEM Eq. 5; NPID/PCL-style).

One entry per training image of a domain, indexed by the image's position in the domain.
Entries average an instance's features over time, which steadies the positives of instance
discrimination (Eq. 6) and the points K-means clusters (Eq. 7) against augmentation noise
(UEM issue 3). The bank is a buffer of an ``nn.Module`` so it travels with ``state_dict``
and loads under ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MomentumMemoryBank(nn.Module):
    """Eq. 5: ``m_i ← β m_i + (1 − β) f(x_i)`` for the instances of a mini-batch.

    Args:
        num_entries: number of images N of the domain.
        dim: feature width D.
        momentum: β (0.99 in UEM).
        renormalize: L2-normalise entries at initialisation and after every update. UEM does
            not say [GAP]; NPID/PCL renormalise, which keeps ``f·m/τ`` a scaled cosine.

    Attributes:
        entries: ``[N, D]`` buffer; zeros until ``initialize``.
    """

    entries: torch.Tensor

    def __init__(self, num_entries: int, dim: int, momentum: float = 0.99,
                 renormalize: bool = True) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"bank momentum must be in [0, 1), got {momentum}")
        if num_entries < 1 or dim < 1:
            raise ValueError(f"a memory bank needs num_entries >= 1 and dim >= 1, got "
                             f"{num_entries} and {dim}")
        self.momentum = momentum
        self.renormalize = renormalize
        self.register_buffer("entries", torch.zeros(num_entries, dim))

    def __len__(self) -> int:
        return self.entries.shape[0]

    @torch.no_grad()
    def initialize(self, features: torch.Tensor) -> None:
        """Set every entry from the initial model's features ``[N, D]`` (Eq. 5's m_i init)."""
        if features.shape != self.entries.shape:
            raise ValueError(f"bank initialisation needs features of shape {tuple(self.entries.shape)}, "
                             f"got {tuple(features.shape)}")
        features = features.to(self.entries)
        self.entries.copy_(F.normalize(features, dim=1) if self.renormalize else features)

    @torch.no_grad()
    def update(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """Apply Eq. 5 to the entries ``indices`` ``[B]`` with features ``[B, D]`` (detached).

        An index that appears twice in the batch (the smaller domain is redrawn to fill an
        epoch) is updated once with the mean of its features, so the result does not depend on
        write order.
        """
        indices = indices.to(self.entries.device, dtype=torch.long)
        features = features.detach().to(self.entries)
        unique, inverse = torch.unique(indices, return_inverse=True)
        summed = torch.zeros(len(unique), features.shape[1], dtype=features.dtype,
                             device=features.device).index_add_(0, inverse, features)
        counts = torch.bincount(inverse, minlength=len(unique)).to(features.dtype).unsqueeze(1)
        updated = self.momentum * self.entries[unique] + (1.0 - self.momentum) * summed / counts
        if self.renormalize:
            updated = F.normalize(updated, dim=1)
        self.entries[unique] = updated

    def mean(self) -> torch.Tensor:
        """``[D]`` mean of all entries, M̄ of Eq. 8 (prototype translation)."""
        return self.entries.mean(dim=0)
