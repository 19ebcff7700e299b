"""DARLING's domain-aware contrastive loss (Zhang et al., "Towards unsupervised domain
generalization", CVPR 2022).

Plain InfoNCE draws its negatives from every domain, so an encoder can pick out the positive
just by the domain-specific cues it shares with the anchor. DARLING instead models the
negatives of an anchor x as drawn from one domain d, chosen with the probability P(d | x) a
domain-similarity predictor gives: the likelihood of the positive is a mixture over domains
of InfoNCE terms whose negatives all come from that domain, so domain cues no longer tell the
positive apart.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

AGGREGATIONS = ("mixture", "expected")


class DomainAwareNCE(nn.Module):
    r"""DARLING loss with one negative set per domain.

    For anchor ``q_i`` with positive key ``k_i``, domain weights ``w_{i,d} = P(d | x_i)`` and the
    negatives ``Q_d`` of domain d, with :math:`s^+_i = q_i\cdot k_i/\tau`:

    .. math::
        p_{i,d} = \frac{\exp(s^+_i)}{\exp(s^+_i) + \sum_{n\in Q_d}\exp(q_i\cdot n/\tau)}

    - ``'mixture'`` (default, the generative reading):
      :math:`\ell_i = -\log \sum_d w_{i,d}\, p_{i,d}`;
    - ``'expected'`` (its Jensen upper bound, the form some re-implementations use):
      :math:`\ell_i = -\sum_d w_{i,d} \log p_{i,d}`.

    The loss is the mean of ``ℓ_i`` over the batch. Gradients reach ``query`` only: keys and
    negatives come from a momentum encoder, and the weights from a separately trained
    predictor.

    Args:
        temperature: τ (MoCo-v2's 0.2 by default).
        aggregation: 'mixture' or 'expected', see above.
    """

    def __init__(self, temperature: float = 0.2, aggregation: str = "mixture") -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={aggregation!r} is unknown; valid: {', '.join(AGGREGATIONS)}")
        self.temperature = temperature
        self.aggregation = aggregation

    def forward(self, query: torch.Tensor, positive_keys: torch.Tensor,
                domain_negatives: Sequence[torch.Tensor],
                domain_weights: torch.Tensor) -> torch.Tensor:
        """``query``/``positive_keys`` ``[B, D]``; ``domain_negatives`` one ``[K_d, D]`` per
        domain; ``domain_weights`` ``[B, n_domains]``, non-negative rows summing to 1."""
        if query.shape != positive_keys.shape:
            raise ValueError(f"query {tuple(query.shape)} and positive_keys "
                             f"{tuple(positive_keys.shape)} must have the same shape")
        if domain_weights.shape != (len(query), len(domain_negatives)):
            raise ValueError(f"domain_weights must have shape ({len(query)}, {len(domain_negatives)}) "
                             f"(batch, domains), got {tuple(domain_weights.shape)}")
        if bool((domain_weights < 0).any()) or not torch.allclose(
                domain_weights.sum(dim=1), torch.ones(len(query), device=domain_weights.device),
                atol=1e-4):
            raise ValueError("domain_weights rows must be non-negative and sum to 1")
        positive = (query * positive_keys.detach()).sum(dim=1, keepdim=True) / self.temperature
        log_p = torch.stack([
            positive.squeeze(1) - torch.logsumexp(
                torch.cat([positive, query @ negatives.detach().t() / self.temperature], dim=1), dim=1)
            for negatives in domain_negatives], dim=1)                               # [B, n_domains]
        weights = domain_weights.detach()
        if self.aggregation == "expected":
            return -(weights * log_p).sum(dim=1).mean()
        return -torch.logsumexp(torch.log(weights) + log_p, dim=1).mean()
