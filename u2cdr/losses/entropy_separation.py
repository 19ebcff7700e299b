"""DANCE's entropy separation loss (Saito et al., NeurIPS 2020, Eq. 4).

A target sample's entropy over the known classes tells known from unknown: a sample of a known
class gets a peaked distribution, one of an unknown class a flat one. DANCE pushes every
entropy away from the threshold ρ — down if below, up if above — and ignores samples already
within a margin m of it, which are too ambiguous to push:

    L_es = mean_i  −|H(p_i) − ρ|   if |H(p_i) − ρ| > m,   0 otherwise,

with ρ = log(K)/2 and m = 0.5 in DANCE. The released ``entropy_margin`` writes it as
``−mean(max(|H − ρ|, m))``, which differs from the equation only by the constant −m for the
ignored samples (no gradient either way); this module follows the code so its values match.
At test time the same ρ is the unknown threshold: ``H(p) > ρ`` → unknown.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``[B]`` entropy (nats) of ``softmax(logits)`` per row, computed with ``log_softmax``."""
    log_probabilities = F.log_softmax(logits, dim=1)
    return -(log_probabilities.exp() * log_probabilities).sum(dim=1)


def default_threshold(num_classes: int) -> float:
    """ρ = log(K)/2, half the largest entropy over K classes (DANCE §3.2)."""
    if num_classes < 2:
        raise ValueError(f"entropy separation needs at least 2 classes, got {num_classes}")
    return math.log(num_classes) / 2


def entropy_separation(logits: torch.Tensor, threshold: float, margin: float = 0.5) -> torch.Tensor:
    """DANCE Eq. 4 (code form): ``−mean_i max(|H(softmax(logits_i)) − ρ|, m)``.

    Args:
        logits: ``[B, K]`` classifier logits of target samples.
        threshold: ρ.
        margin: m ≥ 0.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    distance = (softmax_entropy(logits) - threshold).abs()
    return -distance.clamp(min=margin).mean()
