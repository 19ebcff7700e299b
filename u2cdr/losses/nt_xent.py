"""NT-Xent, SimCLR's normalised-temperature-scaled cross-entropy (Chen et al., ICML 2020, Eq. 1).

A batch of N images gives 2N views; view i's positive is the other view of its image and its
negatives are the other 2(N − 1) views, whatever image (or domain) they come from. There is no
memory or queue: the negatives are the batch itself, which is why SimCLR needs large batches.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NTXent(nn.Module):
    r""":math:`\ell(i, j) = -\log \frac{\exp(\mathrm{sim}(z_i, z_j)/\tau)}
    {\sum_{k \ne i} \exp(\mathrm{sim}(z_i, z_k)/\tau)}`, averaged over all 2N ordered positive
    pairs (both ``(i, j)`` and ``(j, i)``); ``sim`` is the cosine similarity.

    Args:
        temperature: τ (0.5 is SimCLR's default setting in its ablations).
    """

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, first_views: torch.Tensor, second_views: torch.Tensor) -> torch.Tensor:
        """``first_views``/``second_views`` ``[N, D]``, row n of each from image n → scalar."""
        if first_views.shape != second_views.shape or first_views.ndim != 2:
            raise ValueError(f"both views must be [N, D] of one shape, got "
                             f"{tuple(first_views.shape)} and {tuple(second_views.shape)}")
        if len(first_views) < 2:
            raise ValueError("NT-Xent needs at least 2 images: a single image has no negatives")
        count = len(first_views)
        views = F.normalize(torch.cat([first_views, second_views]), dim=1)      # [2N, D]
        logits = views @ views.t() / self.temperature
        self_pairs = torch.eye(2 * count, dtype=torch.bool, device=views.device)
        logits = logits.masked_fill(self_pairs, float("-inf"))                  # k ≠ i
        own = torch.arange(count, device=views.device)
        positives = torch.cat([own + count, own])                               # i ↔ i + N
        return F.cross_entropy(logits, positives)
