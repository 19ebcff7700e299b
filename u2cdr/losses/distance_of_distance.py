"""UCDIR's distance-of-distance loss (Hu & Lee, ECCV 2022, §3.3).

Describe every sample of a batch by its soft assignment to domain A's prototypes, and again
by its soft assignment to domain B's prototypes. If the two domains' clusters correspond,
two samples that are close in A's cluster space are also close in B's, so the matrices of
pairwise distances computed both ways agree. The loss measures how much they disagree — a
domain discrepancy that needs no paired images and no labels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistanceOfDistance(nn.Module):
    r"""Squared difference of two pairwise-distance matrices.

    .. math::
        s^X_i = \operatorname{softmax}(f_i \cdot P_X^\top / \tau), \qquad
        D^X_{ij} = 1 - \frac{s^X_i \cdot s^X_j}{\lVert s^X_i \rVert \lVert s^X_j \rVert}, \qquad
        \mathcal L = \frac1B \sum_i \lVert D^A_{i\cdot} - D^B_{i\cdot} \rVert_2^2

    for the batch ``f`` ``[B, D]`` and the two domains' prototypes ``P_A`` ``[K_A, D]`` and
    ``P_B`` ``[K_B, D]`` (the counts may differ). UCDIR computes the row norm with
    ``pairwise_distance``, which adds 1e-6 to each difference; the exact norm is used here.

    Args:
        temperature: τ of the soft assignments (UCDIR hard-codes 0.01 in ``dist_cal``).
    """

    def __init__(self, temperature: float = 0.01) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def distances(self, features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """``[B, B]`` cosine distances between the samples' soft assignments to ``prototypes``."""
        assignment = F.normalize(F.softmax(features @ prototypes.t() / self.temperature, dim=1),
                                 dim=1)
        return 1.0 - assignment @ assignment.t()

    def forward(self, features: torch.Tensor, prototypes_a: torch.Tensor,
                prototypes_b: torch.Tensor) -> torch.Tensor:
        difference = self.distances(features, prototypes_a) - self.distances(features, prototypes_b)
        return difference.pow(2).sum(dim=1).mean()
