"""In-domain self-matching supervision (CoDA, Wang et al. AAAI 2023).

CoDA keeps, per domain and per granularity, a cluster classifier whose weights start as that
domain's K-means centroids. The classifier's prediction for an image's *memory-bank* entry
(its feature averaged over past steps), sharpened by a low temperature, is the soft target for
the prediction on the image's current feature. The bank steadies the target, so the encoder
learns to keep each image in the cluster its history points to, while the classifier keeps
adapting; no pair across domains is needed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfMatchingLoss(nn.Module):
    r"""Cross-entropy against the sharpened, detached prediction of the memory entry.

    .. math::
        q_i = \operatorname{softmax}(W m_i / \tau), \qquad
        \mathcal L = \frac1B \sum_{i=1}^{B} -\sum_{k=1}^{K} q_{ik}\,
                     \log \operatorname{softmax}(W f_i / \tau_s)_k

    ``W f_i`` are the classifier's logits for the current feature and ``W m_i`` those for the
    image's bank entry; ``q`` carries no gradient. τ = 0.01 in CoDA's code (``tau``), which
    makes ``q`` nearly one-hot. CoDA's code feeds the raw current logits ``W f`` to
    ``CrossEntropyLoss``, i.e. τ_s = 1; with unit features and centroid weights those logits
    are cosines, so the prediction stays close to uniform and a smaller τ_s sharpens it.

    Args:
        temperature: τ of the target's softmax.
        student_temperature: τ_s dividing the current logits.
    """

    def __init__(self, temperature: float = 0.01, student_temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0 or student_temperature <= 0:
            raise ValueError(f"temperature and student_temperature must be positive, got "
                             f"{temperature} and {student_temperature}")
        self.temperature = temperature
        self.student_temperature = student_temperature

    def forward(self, logits: torch.Tensor, memory_logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``[B, K]`` of the current features, ``memory_logits`` ``[B, K]`` → scalar."""
        if logits.shape != memory_logits.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and memory_logits "
                             f"{tuple(memory_logits.shape)} must have the same shape")
        targets = F.softmax(memory_logits.detach() / self.temperature, dim=1)
        log_predictions = F.log_softmax(logits / self.student_temperature, dim=1)
        return -(targets * log_predictions).sum(dim=1).mean()
