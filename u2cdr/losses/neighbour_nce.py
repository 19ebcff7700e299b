"""Contrastive loss with several positives per anchor: the instance and its nearest neighbours.

Nearest-neighbour contrastive learning (NNCLR, Dwibedi et al. ICCV 2021; DN²A, Liu et al.
CVPR 2023) pulls an image towards neighbours that probably share its class, not only towards
another view of itself; DN²A takes those neighbours both inside the anchor's domain and in the
other domain, which is what connects the two domains' images of one class.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NeighbourNCE(nn.Module):
    r"""Multi-positive InfoNCE over a candidate set (the "outside" form of SupCon):

    .. math::
        \ell_i = -\frac{1}{|P_i|}\sum_{p\in P_i}
                 \log\frac{\exp(z_i\cdot c_p/\tau)}{\sum_{c\in C_i}\exp(z_i\cdot c/\tau)}

    ``C_i`` holds the candidates anchor i is contrasted with (e.g. all memory-bank entries of
    both domains) and ``P_i ⊆ C`` its positives (its own entry, its in-domain and its trusted
    cross-domain neighbours), both given as boolean masks over one shared candidate matrix, so
    each anchor may see its own candidate set (``candidate_mask``; default: all of them). The
    loss is the mean of ``ℓ_i`` over the batch; gradients reach the anchors only.

    Args:
        temperature: τ.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, features: torch.Tensor, candidates: torch.Tensor, positive_mask: torch.Tensor,
                candidate_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``features [B, D]``, ``candidates [N, D]``, ``positive_mask`` and optional
        ``candidate_mask`` ``[B, N]`` bool → scalar."""
        shape = (len(features), len(candidates))
        for name, mask in (("positive_mask", positive_mask), ("candidate_mask", candidate_mask)):
            if mask is not None and mask.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (anchors, candidates), got "
                                 f"{tuple(mask.shape)}")
        positive_mask = positive_mask.to(dtype=torch.bool, device=features.device)
        counts = positive_mask.sum(dim=1)
        if bool((counts == 0).any()):
            raise ValueError(f"anchors {torch.nonzero(counts == 0).flatten().tolist()} have no "
                             "positive; every anchor needs at least its own entry")
        logits = features @ candidates.detach().t() / self.temperature
        if candidate_mask is not None:
            candidate_mask = candidate_mask.to(dtype=torch.bool, device=features.device)
            if bool((positive_mask & ~candidate_mask).any()):
                raise ValueError("every positive must also be a candidate (positive_mask ⊆ "
                                 "candidate_mask)")
            logits = logits.masked_fill(~candidate_mask, float("-inf"))
        log_prob = F.log_softmax(logits, dim=1)
        positive_log_prob = log_prob.masked_fill(~positive_mask, 0.0).sum(dim=1)
        return -(positive_log_prob / counts).mean()
