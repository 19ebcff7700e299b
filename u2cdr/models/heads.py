"""Projection heads that map pooled backbone features to the contrastive embedding space.

MoCo-v2's ``--mlp`` head (Linear(d, d)–ReLU–Linear(d, 128)), reused by UCDIR and inferred for
UEM (spec §3.2), carries the instance-discrimination loss; retrieval may use its L2-normalised
output. The layer indices match MoCo's ``fc.0`` / ``fc.2`` so its weights load by name.
"""
from __future__ import annotations

import logging
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger("u2cdr")

HEAD_KINDS = ("mlp", "linear", "none")


class ProjectionHead(nn.Module):
    """``[B, in_dim] -> [B, out_dim]``, optionally L2-normalised.

    Args:
        in_dim: backbone feature width.
        kind: 'mlp' (Linear(in_dim, hidden_dim)–ReLU–Linear(hidden_dim, low_dim)), 'linear'
            (Linear(in_dim, low_dim)) or 'none' (identity; ``out_dim = in_dim``).
        low_dim: output width of 'mlp' and 'linear' (128 in MoCo-v2/UCDIR).
        hidden_dim: hidden width of 'mlp'; defaults to ``in_dim`` as in MoCo-v2.
        normalize: L2-normalise the output, so dot products are cosines (Eqs. 6–7 use
            ``f·m/τ`` with τ = 0.07, which presumes unit vectors).
    """

    def __init__(self, in_dim: int, kind: str = "mlp", low_dim: int = 128,
                 hidden_dim: int | None = None, normalize: bool = True) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ValueError(f"head kind {kind!r} is unknown; valid: {', '.join(HEAD_KINDS)}")
        self.kind = kind
        self.normalize = normalize
        if kind == "mlp":
            hidden = in_dim if hidden_dim is None else hidden_dim
            self.layers = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, low_dim))
            self.out_dim = low_dim
        elif kind == "linear":
            self.layers = nn.Sequential(nn.Linear(in_dim, low_dim))
            self.out_dim = low_dim
        else:
            self.layers = nn.Sequential()
            self.out_dim = in_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        projected = self.layers(features)
        return F.normalize(projected, dim=1) if self.normalize else projected

    def load_pretrained(self, head_state: Mapping[str, torch.Tensor]) -> bool:
        """Load a checkpoint's ``fc`` weights when names and shapes match exactly.

        ``head_state`` uses MoCo's names without ``fc.`` (``0.weight`` … ``2.bias`` for the MLP,
        ``weight``/``bias`` for a single linear layer). Anything else (a torchvision 1000-way
        classifier, a head of another width) is dropped with a log line, never loaded partly.

        Returns:
            True when the head now holds the checkpoint's weights.
        """
        if not head_state:
            return False
        state = dict(head_state)
        if self.kind == "linear" and set(state) == {"weight", "bias"}:
            state = {f"0.{key}": value for key, value in state.items()}
        own = self.layers.state_dict()
        matches = set(state) == set(own) and all(state[k].shape == own[k].shape for k in own)
        if not matches:
            shapes = {key: tuple(value.shape) for key, value in head_state.items()}
            logger.info("checkpoint fc weights %s do not match the %r projection head %s; dropped "
                        "(the head starts from random init)", shapes, self.kind,
                        {key: tuple(value.shape) for key, value in own.items()})
            return False
        self.layers.load_state_dict(state)
        logger.info("loaded the checkpoint's fc weights into the %r projection head", self.kind)
        return True
