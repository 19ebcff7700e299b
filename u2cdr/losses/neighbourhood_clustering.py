"""DANCE's neighbourhood clustering loss (Saito et al., NeurIPS 2020, Eqs. 1–2).

Each target feature f_i is compared with every *other* target sample (the memory bank) and
with the class prototypes of the source classifier; minimising the entropy of the softmax over
all of them makes f_i commit to a few neighbours or to one prototype, which clusters the target
domain without labels and pulls known samples to their class:

    p_ij = exp(F_j · f_i / T) / Σ_{j' ≠ i} exp(F_j' · f_i / T),   F = [W; V],
    L_nc = −(1/B) Σ_i Σ_{j ≠ i} p_ij log p_ij.

The released ``train_dance.py`` takes the other samples from two places: the memory bank with
every entry of the current batch masked out, and the batch itself (current features, diagonal
masked); masked logits are set to −1/T, the cosine −1. This module does the same.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from u2cdr.losses.entropy_separation import softmax_entropy


def neighbourhood_logits(features: torch.Tensor, indices: torch.Tensor, bank: torch.Tensor,
                         prototype_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``[B, K + N + B]`` logits over prototypes, bank entries and batch neighbours.

    Args:
        features: ``[B, D]`` target features (normalised here).
        indices: ``[B]`` the batch's rows of ``bank``; those columns are masked.
        bank: ``[N, D]`` memory-bank entries of the target domain (constants).
        prototype_logits: ``[B, K]`` the classifier's logits of ``features`` (cosine / T).
        temperature: T.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    features = F.normalize(features, dim=1)
    masked = -1.0 / temperature
    bank_logits = features @ bank.detach().t() / temperature
    bank_logits = bank_logits.index_fill(1, indices.to(bank_logits.device).long(), masked)
    batch_logits = features @ features.t() / temperature
    diagonal = torch.eye(len(features), dtype=torch.bool, device=features.device)
    batch_logits = batch_logits.masked_fill(diagonal, masked)
    return torch.cat([prototype_logits, bank_logits, batch_logits], dim=1)


def neighbourhood_clustering(features: torch.Tensor, indices: torch.Tensor, bank: torch.Tensor,
                             prototype_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """L_nc: mean entropy of ``softmax(neighbourhood_logits(...))`` (DANCE Eq. 2)."""
    return softmax_entropy(neighbourhood_logits(features, indices, bank, prototype_logits,
                                                temperature)).mean()
