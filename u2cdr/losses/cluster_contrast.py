"""UCDIR's cluster-wise contrastive loss (Hu & Lee, "Feature representation learning for
unsupervised cross-domain image retrieval", ECCV 2022, §3.2).

Instance contrast pushes apart every pair of images, including images of the same class. The
cluster-wise term instead treats every memory entry that K-means put in the sample's own
cluster as a positive (a supervised-contrastive loss with pseudo-labels), so features become
class-aware within each domain. Samples whose key is not confidently inside its cluster are
filtered out, so noisy pseudo-labels near cluster borders do not pull the wrong way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from u2cdr.losses.neighbour_nce import NeighbourNCE


class ClusterContrast(nn.Module):
    r"""Cluster-wise contrast of queries against a one-slot-per-image memory.

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{j \in P(i)}
                 \log \frac{\exp(q_i \cdot m_j / \tau)}{\sum_{n=1}^{N} \exp(q_i \cdot m_n / \tau)},
        \qquad P(i) = \{ j : a_j = a_{x_i} \}

        w_i = \mathbb 1[\operatorname{softmax}_c(k_i \cdot p_c / \tau)_{a_{x_i}} > \theta],
        \qquad \mathcal L = \frac{\sum_i w_i \ell_i}{\sum_i w_i + 10^{-8}}

    with ``q_i`` the query feature of image ``x_i``, ``k_i`` its key (momentum encoder),
    ``m`` the domain's memory (``N`` entries, one per image), ``a`` the K-means assignment of
    every image and ``p`` the L2-normalised centroids. The denominator runs over the whole
    memory, own entry included (UCDIR writes the current keys into the memory first). ``ℓ_i``
    is ``NeighbourNCE`` with the cluster-mates as positives; the filter keeps the confident rows
    (the mean over them equals UCDIR's weighted sum up to its 1e-8).

    Args:
        temperature: τ (0.2 in UCDIR's scripts), shared by the contrast and the filter.
        filter_threshold: θ (``--cwcon-filterthresh``, 0.2).
    """

    def __init__(self, temperature: float = 0.2, filter_threshold: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= filter_threshold < 1.0:
            raise ValueError(f"filter_threshold must lie in [0, 1), got {filter_threshold}")
        self.temperature = temperature
        self.filter_threshold = filter_threshold
        self.multi_positive_nce = NeighbourNCE(temperature)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, indices: torch.Tensor,
                memory: torch.Tensor, assignments: torch.Tensor,
                prototypes: torch.Tensor) -> torch.Tensor:
        """``queries``/``keys`` ``[B, D]`` of images ``indices`` ``[B]``; ``memory`` ``[N, D]``;
        ``assignments`` ``[N]`` cluster ids in ``0..K-1``; ``prototypes`` ``[K, D]`` → scalar."""
        indices = indices.to(memory.device, dtype=torch.long)
        assignments = assignments.to(memory.device, dtype=torch.long)
        own_cluster = assignments[indices]                                    # [B]
        with torch.no_grad():
            key_posterior = F.softmax(keys @ prototypes.t() / self.temperature, dim=1)
            confident = key_posterior.gather(1, own_cluster[:, None]).squeeze(1) \
                > self.filter_threshold
        if not bool(confident.any()):
            return queries.sum() * 0.0  # nothing passes the filter: no pull, graph kept
        cluster_mates = own_cluster[confident, None] == assignments[None, :]  # [B', N]
        return self.multi_positive_nce(queries[confident], memory, cluster_mates)
