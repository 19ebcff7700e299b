"""Instance discrimination against a memory bank (UEM Eq. 6; Wu et al., NPID, CVPR 2018).

Each image is its own class: its feature must be closer to its own bank entry than to the
entries of other images of the same domain. UEM runs it per domain, so domains are never
contrasted against each other (which would teach domain-separating features, UEM Eq. 2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NEGATIVE_SETS = ("bank", "batch")
REDUCTIONS = ("mean", "sum")


class InstanceNCE(nn.Module):
    r"""Eq. 6: :math:`\mathcal L = -\log \frac{\exp(f_i\cdot m_i/\tau)}{\sum_j \exp(f_i\cdot m_j/\tau)}`.

    The positive of sample i is its own bank entry ``m_{idx_i}``. The negatives ``j`` are

    - ``'bank'`` (default): every entry of the domain's bank, as the paper's text says
      ("historical features of all other instances") and as PCL/UCDIR do;
    - ``'batch'``: only the bank entries of the batch's instances, the printed sum
      :math:`j = 1..B` of Eq. 6.

    Args:
        temperature: τ (0.07 in UEM).
        negatives: 'bank' or 'batch', see above.
        reduction: 'mean' over the batch (default; keeps the learning rate independent of the
            batch size) or 'sum' (Eq. 6 as printed).
    """

    def __init__(self, temperature: float = 0.07, negatives: str = "bank",
                 reduction: str = "mean") -> None:
        super().__init__()
        if negatives not in NEGATIVE_SETS:
            raise ValueError(f"negatives={negatives!r} is unknown; valid: {', '.join(NEGATIVE_SETS)}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction={reduction!r} is unknown; valid: {', '.join(REDUCTIONS)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.negatives = negatives
        self.reduction = reduction

    def forward(self, features: torch.Tensor, indices: torch.Tensor,
                bank_entries: torch.Tensor) -> torch.Tensor:
        """Eq. 6 for ``features`` ``[B, D]`` of instances ``indices`` ``[B]``.

        ``bank_entries`` ``[N, D]`` is the domain's memory bank (no gradient flows into it).
        """
        indices = indices.to(bank_entries.device, dtype=torch.long)
        if self.negatives == "bank":
            logits = features @ bank_entries.t() / self.temperature          # [B, N]
            targets = indices
        else:
            logits = features @ bank_entries[indices].t() / self.temperature  # [B, B]
            targets = torch.arange(len(indices), device=features.device)
        return F.cross_entropy(logits, targets, reduction=self.reduction)
