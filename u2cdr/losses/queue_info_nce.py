"""MoCo's InfoNCE against a first-in-first-out queue of keys (He et al., CVPR 2020), with the
queue entries of the query's own image masked out (DG-UCDIR's ``neg_logit_getter``).

A queue larger than an epoch of the smaller domain holds older keys of the same image; counted
as negatives they would push an image away from itself, so entries whose owner is the query's
image are removed from the denominator.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class QueueInfoNCE(nn.Module):
    r""":math:`\ell_i = -\log \frac{\exp(q_i\cdot k_i/\tau)}{\exp(q_i\cdot k_i/\tau) +
    \sum_{j:\, o_j \ne x_i} \exp(q_i\cdot u_j/\tau)}`, averaged over the batch.

    ``u`` are the queue entries, ``o_j`` the image each entry was computed from and ``x_i`` the
    image of query ``i``.

    Args:
        temperature: τ (0.2 in DG-UCDIR's script).
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor,
                queue_owners: torch.Tensor | None = None,
                indices: torch.Tensor | None = None) -> torch.Tensor:
        """``queries``/``keys`` ``[B, D]``, ``queue`` ``[K, D]``; with ``queue_owners`` ``[K]``
        and ``indices`` ``[B]`` the own image's entries are masked. Keys get no gradient."""
        positive = (queries * keys.detach()).sum(dim=1, keepdim=True)        # [B, 1]
        negatives = queries @ queue.detach().t()                             # [B, K]
        if (queue_owners is None) != (indices is None):
            raise ValueError("pass both queue_owners and indices, or neither")
        if queue_owners is not None and indices is not None:
            own = queue_owners.to(queries.device)[None, :] == indices.to(queries.device)[:, None]
            negatives = negatives.masked_fill(own, float("-inf"))
        logits = torch.cat([positive, negatives], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long,
                                                   device=queries.device))
