"""Balanced Sinkhorn-Knopp (Cuturi 2013; SwAV's equipartition; ProtoOT's OT prototypes).

Given scores of N samples against K prototypes, find the soft assignment closest to
softmax(scores/ε) whose columns share the mass equally — which keeps every prototype in use.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """``scores [N, K]`` → plan ``[N, K]`` with uniform column mass; each row sums to 1.

    Args:
        scores: similarities (higher = closer), e.g. ``features @ prototypes.T``.
        epsilon: entropic regularisation; smaller gives harder assignments.
        iterations: alternating row/column normalisations.
    """
    if scores.ndim != 2 or min(scores.shape) < 1:
        raise ValueError(f"scores must be a non-empty [N, K] matrix, got shape {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"epsilon must be > 0 and iterations >= 1, got {epsilon}, {iterations}")
    num_samples, num_prototypes = scores.shape
    # Subtracting the max keeps exp() finite; it cancels in the normalisations.
    plan = torch.exp((scores - scores.max()) / epsilon).double()
    plan /= plan.sum()
    for _ in range(iterations):
        plan /= plan.sum(dim=0, keepdim=True) * num_prototypes
        plan /= plan.sum(dim=1, keepdim=True) * num_samples
    return (plan * num_samples).to(scores.dtype)
