"""The floor of every table: retrieval with the initial backbone, no training at all.

With a randomly initialised backbone (the offline digits benchmark) this is the random-feature
floor; with a checkpoint (ImageNet MoCo-v2, as UEM initialises) it is the pretrained floor that
every adaptation method must beat to have learnt anything from the two domains.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.methods._trainer import resolve_device
from u2cdr.methods.base import Method
from u2cdr.models.encoder import EMBEDDINGS, Encoder, embed_loader
from u2cdr.registry import BACKBONES, METHODS, build

logger = logging.getLogger("u2cdr")


@METHODS.register_module(name="pretrained")
class Pretrained(Method):
    """Embed both domains with the backbone as built (random init or a checkpoint).

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint='moco_v2.pth.tar')``.
        embedding: 'backbone' (pooled features) or 'head' (the checkpoint's projection head,
            only when the checkpoint carries one whose shapes match, e.g. MoCo-v2's MLP).
        normalize: L2-normalise the features (Euclidean ranking of unit vectors = cosine).
        device: 'cpu' or 'cuda'.
        batch_size: images per forward pass when embedding.
        num_workers: data-loader worker processes when embedding.
    """

    family: ClassVar[str] = "reference"
    trains: ClassVar[bool] = False

    def __init__(self, backbone: dict, embedding: str = "backbone", normalize: bool = True,
                 device: str = "cpu", batch_size: int = 256, num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head="mlp")
        if embedding == "head" and not self.encoder.head_loaded:
            raise ValueError("embedding='head' needs a backbone checkpoint whose fc weights fit the "
                             "projection head (e.g. MoCo-v2 with --mlp); this backbone has none, so the "
                             "head would be random. Use embedding='backbone'.")
        self.encoder.to(self.device)
        self.embedding = embedding
        self.normalize = normalize
        self.batch_size = batch_size
        self.num_workers = num_workers

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        """Nothing to learn: the floor is the initial model itself."""
        logger.info("pretrained: no training; embedding with the initial %s", self.backbone_cfg["type"])

    def embed(self, domain: DomainData) -> np.ndarray:
        loader = domain.eval_loader(batch_size=self.batch_size, num_workers=self.num_workers)
        return embed_loader(self.encoder.embedding_module(self.embedding), loader, self.device,
                            normalize=self.normalize)

    def describe(self) -> dict:
        return {
            "backbone": self.backbone_cfg,
            "checkpoint": getattr(self.encoder.backbone, "checkpoint_report", {"checkpoint": None}),
            "embedding": self.embedding,
            "feature_dim": (self.encoder.out_dim if self.embedding == "head"
                            else self.encoder.backbone.out_dim),
            "normalized": self.normalize,
            "head_loaded_from_checkpoint": self.encoder.head_loaded,
            "training": "none",
        }
