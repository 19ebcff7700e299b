"""Margin disparity discrepancy (MDD; Zhang et al., ICML 2019, Sec. 5), as the loss to minimise.

With a main classifier f, an adversarial classifier f' and h_f = argmax f, the paper's
empirical discrepancy is

    D_γ = E_{x~Q̂} log(1 − σ_{h_f(x)}(f'(ψ(x)))) + γ · E_{x~P̂} log σ_{h_f(x)}(f'(ψ(x)))

(P̂ source, Q̂ target; the target term is the paper's modified cross-entropy, which keeps
its gradient where the plain one saturates). f' maximises D_γ — agree with f on the source,
disagree on the target — and the features ψ minimise it. This module returns −D_γ, so
that one optimiser minimising it trains f' directly while a gradient-reversal layer in front of
f' makes ψ follow the opposite direction:

    −D_γ = γ · CE(f'(s), h_f(s)) − log(1 − σ_{h_f(t)}(f'(t)))          (means over each batch)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def margin_disparity_loss(adversary_source: torch.Tensor, adversary_target: torch.Tensor,
                          predicted_source: torch.Tensor, predicted_target: torch.Tensor,
                          margin: float, eps: float = 1e-6) -> torch.Tensor:
    """``−D_γ`` for one batch of each domain.

    Args:
        adversary_source, adversary_target: ``[B, K]`` logits of f' on source / target features.
        predicted_source, predicted_target: ``[B]`` h_f, the main classifier's argmax labels
            (no gradient flows through them).
        margin: γ > 0, the weight of source agreement (MDD's margin factor).
        eps: floor inside ``log(1 − σ)`` where f' already agrees completely.
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    source_term = F.cross_entropy(adversary_source, predicted_source)
    agreement = F.softmax(adversary_target, dim=1).gather(1, predicted_target[:, None]).squeeze(1)
    target_term = -torch.log((1.0 - agreement).clamp_min(eps)).mean()
    return margin * source_term + target_term
