"""Supervised contrastive loss (SupCon; Khosla et al., NeurIPS 2020, Eq. 2, L^sup_out).

For anchor i with positives P(i) (other samples of its class) and A(i) (every other sample),

    L_i = −1/|P(i)| Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a∈A(i)} exp(z_i·z_a/τ) ),

averaged over the anchors that have at least one positive. With the samples of two domains in
one batch, same-class images of both domains are each other's positives: the loss pulls a
class together across domains, which is what a retrieval upper bound should learn.
"""
from __future__ import annotations

import torch
from torch import nn


class SupervisedContrastiveLoss(nn.Module):
    """SupCon's L^sup_out on one view per sample.

    Args:
        temperature: τ (0.1 in Khosla et al.).
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``features`` ``[N, D]`` (L2-normalised), ``labels`` ``[N]`` → scalar loss.

        A batch in which no sample has a positive gives 0 (still attached to the graph).
        """
        if features.ndim != 2 or labels.shape != (len(features),):
            raise ValueError(f"need features [N, D] and labels [N], got shapes "
                             f"{tuple(features.shape)} and {tuple(labels.shape)}")
        labels = labels.to(features.device)
        logits = features @ features.t() / self.temperature
        self_mask = torch.eye(len(features), dtype=torch.bool, device=features.device)
        log_normaliser = torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1,
                                         keepdim=True)
        log_prob = logits - log_normaliser
        positives = (labels[:, None] == labels[None, :]) & ~self_mask
        counts = positives.sum(dim=1)
        anchors = counts > 0
        if not bool(anchors.any()):
            return features.sum() * 0.0
        per_anchor = -torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
        return (per_anchor[anchors] / counts[anchors]).mean()
