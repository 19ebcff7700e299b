"""ProtoOT's in-domain contrast (Li, Shi, Yu, Wang, "Unsupervised cross-domain image retrieval
via prototypical optimal transport", AAAI 2024).

One positive logit blends three things a query should be close to — its other augmented view
(instance invariance), its nearest neighbour in the domain's memory (local semantic
consistency) and the prototype optimal transport matched it to (cluster semantics) — and the
negatives are the *other* prototypes only, so a feature is pushed away from unmatched clusters
rather than from every other image (global discriminativeness without instance repulsion
between same-class images).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProtoOTContrast(nn.Module):
    r"""Blended-positive contrast against the unmatched prototypes.

    .. math::
        s^+_i = w_{aug}\, q_i\cdot k_i + w_{nn}\, q_i\cdot n_i + w_{proto}\, q_i\cdot p_{c_i}

        \ell_i = -\log \frac{\exp(s^+_i/\tau)}
                             {\exp(s^+_i/\tau) + \sum_{c \ne c_i} \exp(q_i\cdot p_c/\tau)},
        \qquad \mathcal L = \frac1B \sum_i \ell_i

    with ``k_i`` the key of the other view, ``n_i`` the nearest memory entry (other than the
    image's own), ``c_i`` the prototype the transport plan assigns, ``p`` the prototypes.
    The weights are ProtoOT's released values (1, 0.5, 0.05); the paper prints no numbers.

    Args:
        temperature: τ (0.2).
        augmentation_weight, neighbour_weight, prototype_weight: w_aug, w_nn, w_proto.
    """

    def __init__(self, temperature: float = 0.2, augmentation_weight: float = 1.0,
                 neighbour_weight: float = 0.5, prototype_weight: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.weights = (augmentation_weight, neighbour_weight, prototype_weight)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, neighbours: torch.Tensor,
                prototypes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``queries``/``keys``/``neighbours`` ``[B, D]``, ``prototypes`` ``[K, D]``,
        ``targets`` ``[B]`` in ``0..K-1`` → scalar. Only ``queries`` receive gradients."""
        targets = targets.to(queries.device, dtype=torch.long)
        prototypes = prototypes.detach()
        w_aug, w_nn, w_proto = self.weights
        prototype_logits = queries @ prototypes.t()                                   # [B, K]
        positive = (w_aug * (queries * keys.detach()).sum(dim=1)
                    + w_nn * (queries * neighbours.detach()).sum(dim=1)
                    + w_proto * prototype_logits.gather(1, targets[:, None]).squeeze(1))
        # The matched prototype's own logit is replaced by the blended positive.
        logits = prototype_logits.scatter(1, targets[:, None], positive[:, None])
        return F.cross_entropy(logits / self.temperature, targets)
