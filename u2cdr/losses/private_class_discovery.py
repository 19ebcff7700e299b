"""UniOT's private class discovery loss, PCD (Chang et al., NeurIPS 2022, §3.3).

Target samples are clustered on a set of target prototypes (a prototype classifier, the
"cluster head") by self-labelling with balanced optimal transport, SwAV-style: the soft
assignments ``Q`` of the batch, of each sample's nearest neighbour and of a random fill from the
memory come from Sinkhorn over their cosine scores (equipartition keeps every prototype in use,
so private target classes get prototypes of their own), and each sample must predict its own
assignment (global term) and, swapped, its neighbour's (local term):

    Q = Sinkhorn([s_anchor; s_neighbour; s_fill], ε, n),  rows summing to 1
    L_global = −mean_i Σ_k Q^a_ik log softmax(l^a_i)_k
    L_local  = mean_i ½ [ −Σ_k Q^n_ik log softmax(l^a_i)_k − Σ_k Q^a_ik log softmax(l^n_i)_k ]
    L_PCD = ½ (L_global + L_local)

``l`` are the cluster head's logits (cosine / T) and ``s = l·T`` the cosines the transport reads
(the released ``main.py``: ``S_tt *= temp``; Sinkhorn with ε = 0.05 and 3 iterations).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from u2cdr.losses.sinkhorn import sinkhorn


def private_class_discovery(anchor_logits: torch.Tensor, neighbour_logits: torch.Tensor,
                            fill_logits: torch.Tensor, temperature: float, epsilon: float = 0.05,
                            iterations: int = 3) -> torch.Tensor:
    """L_PCD of one batch.

    Args:
        anchor_logits: ``[B, K]`` cluster-head logits of the batch's features.
        neighbour_logits: ``[B, K]`` logits of each sample's nearest neighbour.
        fill_logits: ``[F, K]`` logits of memory entries that only enlarge the transport problem.
        temperature: T of the cluster head (the cosines are ``logits · T``).
        epsilon: ε of Sinkhorn.
        iterations: Sinkhorn iterations.
    """
    if anchor_logits.shape != neighbour_logits.shape:
        raise ValueError(f"anchor and neighbour logits differ in shape: "
                         f"{tuple(anchor_logits.shape)} vs {tuple(neighbour_logits.shape)}")
    batch = len(anchor_logits)
    scores = torch.cat([anchor_logits, neighbour_logits, fill_logits]).detach() * temperature
    assignments = sinkhorn(scores, epsilon=epsilon, iterations=iterations)
    anchor_q, neighbour_q = assignments[:batch], assignments[batch:2 * batch]
    anchor_log = F.log_softmax(anchor_logits, dim=1)
    neighbour_log = F.log_softmax(neighbour_logits, dim=1)
    global_term = -(anchor_q * anchor_log).sum(dim=1).mean()
    local_term = (-(neighbour_q * anchor_log).sum(dim=1)
                  - (anchor_q * neighbour_log).sum(dim=1)).mean() / 2
    return (global_term + local_term) / 2
