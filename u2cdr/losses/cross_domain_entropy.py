"""Cross-domain matching by entropy minimisation (CDS, Kim et al. ICCV 2021; PCS, Yue et al. CVPR 2021).

A feature of one domain is compared with a set of *anchors* from the other domain — every
entry of that domain's memory bank (CDS, "cross-domain instance-to-instance matching") or that
domain's K-means prototypes (PCS, "cross-domain instance-prototype self-supervision"). The
softmax over those similarities is a soft match; minimising its entropy makes each feature
commit to a few anchors of the other domain, which pulls the two domains' features together
without pairing them. One module serves both papers because the equation is the same; only
the anchors differ.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossDomainEntropy(nn.Module):
    r"""Mean entropy of each feature's similarity distribution over the other domain's anchors.

    .. math::
        p_{ij} = \frac{\exp(f_i\cdot a_j/\tau)}{\sum_{j'\in\mathcal N_i}\exp(f_i\cdot a_{j'}/\tau)},
        \qquad
        \mathcal L = \frac1B\sum_{i=1}^{B} -\sum_{j\in\mathcal N_i} p_{ij}\log p_{ij}

    ``𝒩_i`` is every anchor (the CDS and PCS papers' equations) or, with ``top_k``, the ``k``
    anchors most similar to ``f_i`` (CDS's released code keeps the top 700 bank entries,
    ``n_neighbor``, before the softmax). The released code adds 1e-5 inside the log; here the
    log comes from ``log_softmax``, which is exact and finite.

    Args:
        temperature: τ (CDS code: 0.1, its ``nce_t``; PCS code: 0.1, its ``temp``).
        top_k: restrict each row to its ``top_k`` largest similarities; None = all anchors.
    """

    def __init__(self, temperature: float = 0.1, top_k: int | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        self.temperature = temperature
        self.top_k = None if top_k is None else int(top_k)

    def forward(self, features: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """``features`` ``[B, D]`` (with gradient) against ``anchors`` ``[N, D]`` → scalar.

        Anchors are treated as constants (bank entries and prototypes carry no gradient).
        """
        if features.shape[1] != anchors.shape[1]:
            raise ValueError(f"features have dimension {features.shape[1]} but anchors "
                             f"{anchors.shape[1]}")
        logits = features @ anchors.detach().t() / self.temperature          # [B, N]
        if self.top_k is not None and self.top_k < logits.shape[1]:
            logits = logits.topk(self.top_k, dim=1).values                    # [B, k]
        log_probabilities = F.log_softmax(logits, dim=1)
        entropy = -(log_probabilities.exp() * log_probabilities).sum(dim=1)
        return entropy.mean()
