"""Semantic-Enhanced Loss, SEL (UEM Eq. 11).

ProtoNCE (Eq. 7) only compares a feature with prototypes through dot products; SEL also pulls
it, in Euclidean distance, towards the prototypes it is softly assigned to, so each cluster
tightens around its (merged) prototype:

    L_SEL = 1/B Σ_i Σ_c softmax_c(f_i·p_c/τ) · d(f_i, p_c)

over all ``C̃`` prototypes of the domain's merged set ``P'``.
"""
from __future__ import annotations

import torch
from torch import nn

_DISTANCE_FLOOR = 1e-12  # keeps the gradient of sqrt finite if a feature sits on a prototype


class SemanticEnhancedLoss(nn.Module):
    """Eq. 11: softmax-weighted Euclidean distance from each feature to every prototype.

    Args:
        temperature: τ of the soft assignment (0.07 in UEM).
        detach_weights: stop the gradient through the softmax weights. UEM does not say
            [GAP]; the default (False) is the literal equation, where the weights are
            differentiated too.
    """

    def __init__(self, temperature: float = 0.07, detach_weights: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.detach_weights = detach_weights

    def forward(self, features: torch.Tensor, prototypes: torch.Tensor,
                distance_prototypes: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over the batch of Eq. 11's inner sum.

        Args:
            features: ``[B, D]`` ``f_θ(x_i)``.
            prototypes: ``[C̃, D]`` prototypes of the softmax logits ``f·p/τ``.
            distance_prototypes: ``[C̃, D]`` the same prototypes for ``d(f, p)`` when they are
                kept in another form (UEM uses normalised centroids in logits and raw ones in
                distances, uem.md §8.4); None uses ``prototypes``.
        """
        anchors = prototypes if distance_prototypes is None else distance_prototypes
        if prototypes.shape != anchors.shape or features.shape[1] != prototypes.shape[1]:
            raise ValueError(f"shapes do not fit: features {tuple(features.shape)}, prototypes "
                             f"{tuple(prototypes.shape)}, distance_prototypes {tuple(anchors.shape)}")
        weights = torch.softmax(features @ prototypes.t() / self.temperature, dim=1)   # [B, C̃]
        if self.detach_weights:
            weights = weights.detach()
        # ‖f‖² + ‖p‖² − 2 f·p: no [B, C̃, D] intermediate (C̃ reaches hundreds with fine clusters).
        squared = (features.pow(2).sum(1, keepdim=True) + anchors.pow(2).sum(1)
                   - 2.0 * features @ anchors.t())                                       # [B, C̃]
        distances = squared.clamp_min(_DISTANCE_FLOOR).sqrt()
        return (weights * distances).sum(dim=1).mean()
