"""A first-in-first-out queue of features (MoCo's negatives), kept as a buffer tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureQueue(nn.Module):
    """``size`` L2-normalised feature slots overwritten in ring order by ``enqueue``.

    Starts from random unit vectors (MoCo's initialisation) so the first steps have negatives.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        if dim < 1 or size < 1:
            raise ValueError(f"dim and size must be >= 1, got {dim} and {size}")
        self.register_buffer("entries", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, features: torch.Tensor) -> None:
        """Write ``features [B, D]`` over the oldest slots (wrapping around)."""
        size = len(self.entries)
        features = features.detach()[-size:]
        slots = (int(self.pointer) + torch.arange(len(features), device=self.entries.device)) % size
        self.entries[slots] = features.to(self.entries.dtype)
        self.pointer.fill_((int(self.pointer) + len(features)) % size)
