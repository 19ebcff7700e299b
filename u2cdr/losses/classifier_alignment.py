"""Cross-domain classifier alignment (CoDA, Wang et al. AAAI 2023).

CoDA trains one cluster classifier per domain, both started from the K-means centroids of the
two domains pooled, so cluster k means the same thing in both. Asking the two classifiers to
give the *same* output for every image — of either domain — aligns the domains' cluster
structures without any cross-domain correspondence.
"""
from __future__ import annotations

import torch
from torch import nn

NORMS = ("l1", "l2")


class ClassifierAlignment(nn.Module):
    r"""Mean distance between two classifiers' outputs on the same features.

    .. math::
        \mathcal L = \frac1B \sum_{i=1}^{B} \lVert \sigma(W^A f_i) - \sigma(W^B f_i)\rVert_p^p,
        \qquad p \in \{1, 2\}

    with σ the identity (CoDA's default, ``cross_domain_softmax=False``) or the softmax.
    CoDA sums this over the features of both domains (its ``loss_cdm3`` on target images and
    ``loss_cdm4`` on source images); the caller adds the two.

    Args:
        norm: 'l1' (CoDA's default ``cross_domain_loss``) or 'l2' (squared Euclidean).
        softmax: compare softmax probabilities instead of raw logits.
    """

    def __init__(self, norm: str = "l1", softmax: bool = False) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is unknown; valid: {', '.join(NORMS)}")
        self.norm = norm
        self.softmax = bool(softmax)

    def forward(self, logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` of classifiers A and B on the same features → scalar."""
        if logits_a.shape != logits_b.shape:
            raise ValueError(f"logits_a {tuple(logits_a.shape)} and logits_b "
                             f"{tuple(logits_b.shape)} must have the same shape")
        if self.softmax:
            logits_a, logits_b = logits_a.softmax(dim=1), logits_b.softmax(dim=1)
        difference = logits_a - logits_b
        per_sample = difference.abs().sum(dim=1) if self.norm == "l1" else difference.pow(2).sum(dim=1)
        return per_sample.mean()
