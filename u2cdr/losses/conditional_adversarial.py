"""CDAN's conditional adversarial loss, with optional entropy conditioning (CDAN+E).

Long et al. (NeurIPS 2018) Eq. 7–8: the discriminator D sees h = T(f, g) (the multilinear map
of feature and prediction, ``u2cdr.models.multilinear_map``) and

    L = Σ_i w_i · BCE(D(h_i), y_i) / Σ_i w_i,     y = 1 for domain A, 0 for B,

through gradient reversal, as DANN. Plain CDAN has w_i = 1 (the same loss as
``domain_adversarial_loss``). CDAN+E weights each example by its prediction's certainty,
w = 1 + exp(−H(g)), so easy-to-transfer (confident) examples count more; as in the released
code the weights are normalised to sum to one within each domain, so both domains weigh the
same whatever their batch sizes. Here the weights carry no gradient (the released code lets a
reversed gradient into the entropy; with g taken from fixed cluster centroids there is no
classifier for it to train).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from u2cdr.losses.adversarial import domain_adversarial_loss
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.grl import grad_reverse


def entropy_weights(predictions: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """CDAN+E: ``1 + exp(−H(g))`` per row of ``predictions`` ``[B, K]`` (rows are distributions).

    A one-hot row gets 2, a uniform row over K gets 1 + 1/K. No gradient.
    """
    predictions = predictions.detach()
    entropy = -(predictions * torch.log(predictions + eps)).sum(dim=1)
    return 1.0 + torch.exp(-entropy)


def conditional_adversarial_loss(classifier: DomainClassifier, conditioned_a: torch.Tensor,
                                 conditioned_b: torch.Tensor, coefficient: float = 1.0,
                                 weights_a: torch.Tensor | None = None,
                                 weights_b: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted BCE of ``classifier`` on A (label 1) and B (label 0) conditioned features.

    Args:
        classifier: the domain discriminator (logits ``[N]``).
        conditioned_a: ``[B_a, d]`` T(f, g) of domain-A samples (graph attached to f).
        conditioned_b: ``[B_b, d]`` the same for domain B.
        coefficient: gradient-reversal weight λ seen by the encoder.
        weights_a, weights_b: per-sample weights (``entropy_weights``), both or neither; each
            domain's are normalised to sum to 1. Neither: the unweighted mean over all samples.
    """
    if (weights_a is None) != (weights_b is None):
        raise ValueError("give weights for both domains or for neither")
    if weights_a is None:
        return domain_adversarial_loss(classifier, conditioned_a, conditioned_b, coefficient)
    logits = classifier(grad_reverse(torch.cat([conditioned_a, conditioned_b]), coefficient))
    targets = torch.cat([conditioned_a.new_ones(len(conditioned_a)),
                         conditioned_b.new_zeros(len(conditioned_b))])
    per_sample = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weights = torch.cat([weights_a / weights_a.sum(), weights_b / weights_b.sum()]).detach()
    return (weights * per_sample).sum() / weights.sum()
