"""Switchable Nearest-Neighbouring Match, SN²M (UEM Eqs. 15–17), and its ablation.

Cross-domain nearest neighbours are noisy positives: a neighbour that lies between two
clusters would pull a query into the wrong category. SN²M accepts the neighbour only when it
agrees with the query's prototype, and otherwise keeps only the prototype as positive. For a
domain-A feature ``f_i`` (B is symmetric):

1. ``c_i = argmin_c δ(f_i, p^A_c)`` over A's own prototypes (Eq. 15);
2. ``n_i = argmin_j δ(f_i, m^B_j)`` over the B memory bank (Eq. 16);
3. ``q_i`` = the nearest prototype of ``m^B_{n_i}`` in ``P^{B'}`` (by δ);
4. ``t_i`` = the index in ``P^{B'}`` of ``p^A_{c_i}`` translated to B and merged (``p̃^A_{c_i}``);
5. switch (Eq. 17): the positive set is ``{p̃^A_{c_i}, m^B_{n_i}}`` when ``q_i = t_i``, else
   ``{p̃^A_{c_i}}``; the denominator holds every prototype of ``P^{B'}`` and every bank entry:

    L = 1/B Σ_i −log Δ_i / (Σ_c exp(f_i·p^{B'}_c/τ) + Σ_j exp(f_i·m^B_j/τ)).

Searches use the product distance δ(u, v) = (1 − cos(u, v))·‖u − v‖ (Eq. 15). The ablation
"w/o SN²M" (Table 4) replaces all this by plain cross-domain nearest-neighbour positives
(``CrossDomainNeighbourLoss``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def product_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` δ(u, v) = (1 − cos(u, v)) · ‖u − v‖ between the rows of two matrices."""
    cosine = F.normalize(first, dim=1) @ F.normalize(second, dim=1).t()
    return (1.0 - cosine) * torch.cdist(first, second)


@dataclass
class MatchResult:
    """SN²M's loss and its choices for each sample (all ``[B]``, the last three long/bool)."""

    loss: torch.Tensor
    prototype_target: torch.Tensor   # t_i, index in the other domain's merged set
    neighbour: torch.Tensor          # n_i, index in the other domain's bank
    positive_pair: torch.Tensor      # q_i == t_i: the neighbour is a positive too


class SwitchableNearestNeighbourMatch(nn.Module):
    """Eqs. 15–17 for the features of one domain against the other domain.

    Args:
        temperature: τ (0.07 in UEM).
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, features: torch.Tensor, own_prototypes: torch.Tensor,
                own_in_other_merged: torch.Tensor, other_merged: torch.Tensor,
                other_bank: torch.Tensor, other_merged_logits: torch.Tensor | None = None,
                instance_negatives: torch.Tensor | None = None) -> MatchResult:
        """SN²M for ``features`` of domain X against domain Y.

        Args:
            features: ``[B, D]`` ``f_θ(x^X)``.
            own_prototypes: ``[K_X, D]`` ``P^X`` (raw centroids, for Eq. 15's δ search).
            own_in_other_merged: ``[K_X]`` long, where each X cluster sits in ``P^{Y'}``.
            other_merged: ``[K̃, D]`` ``P^{Y'}`` (raw, for step 3's δ search).
            other_bank: ``[N_Y, D]`` memory bank ``M_Y`` (neighbours and instance negatives).
            other_merged_logits: ``[K̃, D]`` the prototypes of the logits ``f·p/τ`` (UEM
                normalises them, uem.md §8.4); None uses ``other_merged``.
            instance_negatives: ``[M, D]`` the instance terms of the denominator when they are
                not the whole bank (e.g. the other domain's batch); the accepted neighbour is
                then added to the denominator too. None: every bank entry (Eq. 17's N_B sum).
        """
        logit_prototypes = other_merged if other_merged_logits is None else other_merged_logits
        with torch.no_grad():
            own_cluster = product_distance(features, own_prototypes).argmin(dim=1)
            neighbour = product_distance(features, other_bank).argmin(dim=1)
            neighbour_cluster = product_distance(other_bank[neighbour], other_merged).argmin(dim=1)
            target = own_in_other_merged.to(features.device)[own_cluster]
            positive_pair = neighbour_cluster == target
        rows = torch.arange(len(features), device=features.device)
        prototype_logits = features @ logit_prototypes.t() / self.temperature       # [B, K̃]
        neighbour_logits = (features * other_bank[neighbour]).sum(1) / self.temperature
        pair_term = torch.where(positive_pair, neighbour_logits,
                                torch.full_like(neighbour_logits, float("-inf")))
        if instance_negatives is None:
            negatives = [prototype_logits, features @ other_bank.t() / self.temperature]
        else:
            negatives = [prototype_logits, features @ instance_negatives.t() / self.temperature,
                         pair_term.unsqueeze(1)]
        denominator = torch.logsumexp(torch.cat(negatives, 1), dim=1)
        prototype_term = prototype_logits[rows, target]
        numerator = torch.logsumexp(torch.stack([prototype_term, pair_term], 1), dim=1)
        return MatchResult((denominator - numerator).mean(), target, neighbour, positive_pair)


class CrossDomainNeighbourLoss(nn.Module):
    """Ablation "w/o SN²M": the cosine nearest neighbour in the other bank is the positive.

    ``L = 1/B Σ_i −log exp(f_i·m^Y_{n_i}/τ) / Σ_j exp(f_i·m^Y_j/τ)``, ``n_i = argmax_j
    cos(f_i, m^Y_j)`` — the plain nearest-neighbour search the paper attributes to UCDIR
    (uem.md §8.12): no prototype, no switch.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, features: torch.Tensor, other_bank: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            neighbour = (F.normalize(features, dim=1) @ F.normalize(other_bank, dim=1).t()).argmax(1)
        return F.cross_entropy(features @ other_bank.t() / self.temperature, neighbour)
