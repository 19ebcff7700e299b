"""The shared feature extractor f_θ of UEM-style methods: backbone + projection head.

One ``Encoder`` serves both domains (UEM §1: "one feature extractor shared by both domains").
``embed_loader`` is the one place that turns a loader of images into a feature matrix, so every
method embeds the same way (eval mode, no gradients, dataset order, float32).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from u2cdr.models.heads import ProjectionHead

EMBEDDINGS = ("head", "backbone")


class Encoder(nn.Module):
    """``[B, C, H, W] -> [B, head.out_dim]`` = head(backbone(x)).

    Args:
        backbone: a module with ``out_dim``; if it carries ``pretrained_head_state`` (MoCo
            checkpoints do), the head loads it when the shapes match.
        head: 'mlp', 'linear' or 'none' (see ``ProjectionHead``).
        low_dim: projection width (128, MoCo-v2/UCDIR).
        normalize: L2-normalise the projection.

    Attributes:
        head_loaded: whether the head holds checkpoint weights (else random init).
    """

    def __init__(self, backbone: nn.Module, head: str = "mlp", low_dim: int = 128,
                 normalize: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ProjectionHead(backbone.out_dim, kind=head, low_dim=low_dim, normalize=normalize)
        self.out_dim: int = self.head.out_dim
        self.head_loaded: bool = self.head.load_pretrained(
            getattr(backbone, "pretrained_head_state", {}))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def embedding_module(self, embedding: str) -> nn.Module:
        """The sub-network whose output is the retrieval feature: 'head' or 'backbone'."""
        if embedding == "head":
            return self
        if embedding == "backbone":
            return self.backbone
        raise ValueError(f"embedding {embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")


@torch.no_grad()
def embed_loader(model: nn.Module, loader: DataLoader, device: str | torch.device = "cpu",
                 normalize: bool = False) -> np.ndarray:
    """Features of every batch of ``loader`` (``(images, index)`` pairs) in loader order.

    The model runs in eval mode (BatchNorm uses running statistics, so a feature does not
    depend on its batch-mates) and its previous train/eval mode is restored afterwards.

    Args:
        model: maps ``[B, C, H, W]`` to ``[B, D]``.
        loader: yields ``(images, indices)``; must not shuffle if order matters.
        device: where the model already sits; batches are moved there.
        normalize: L2-normalise each row (for backbone features ranked by cosine/Euclidean).

    Returns:
        ``[N, D]`` float32 array.
    """
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for images, _ in loader:
            features = model(images.to(device, non_blocking=True)).float()
            if normalize:
                features = F.normalize(features, dim=1)
            chunks.append(features.cpu())
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("embed_loader got an empty loader; the domain has no images")
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


def describe_encoder(encoder: Encoder, backbone_cfg: dict, embedding: str) -> dict:
    """The feature facts every encoder-based method writes into its record.

    One place, so that the keys a reader of ``result.json`` looks for (which checkpoint, which
    head, which layer is retrieved and its width) mean the same for every method.
    """
    return {
        "backbone": backbone_cfg,
        "checkpoint": getattr(encoder.backbone, "checkpoint_report", {"checkpoint": None}),
        "head": encoder.head.kind,
        "head_loaded_from_checkpoint": encoder.head_loaded,
        "embedding": embedding,
        "feature_dim": encoder.out_dim if embedding == "head" else encoder.backbone.out_dim,
        "normalized": True,
    }
