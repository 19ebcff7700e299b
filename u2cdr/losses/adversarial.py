"""Domain-adversarial loss (UEM Eq. 13; DANN).

L_DAL = Σ_i −y_i log g(f(x_i)) − (1 − y_i) log(1 − g(f(x_i))), y = 1 for domain A, 0 for B,
averaged here over the 2B samples. The features pass through gradient reversal, so one backward
pass trains g to tell the domains apart and the encoder to make them indistinguishable.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.grl import grad_reverse


def domain_adversarial_loss(classifier: DomainClassifier, features_a: torch.Tensor,
                            features_b: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Mean binary cross-entropy of ``classifier`` on A (label 1) and B (label 0) features.

    Args:
        classifier: the domain discriminator (logits ``[N]``).
        features_a: ``[B_a, D]`` domain-A features (graph attached to the encoder).
        features_b: ``[B_b, D]`` domain-B features.
        coefficient: gradient-reversal weight λ seen by the encoder.
    """
    features = grad_reverse(torch.cat([features_a, features_b]), coefficient)
    targets = torch.cat([features_a.new_ones(len(features_a)), features_b.new_zeros(len(features_b))])
    return F.binary_cross_entropy_with_logits(classifier(features), targets)
