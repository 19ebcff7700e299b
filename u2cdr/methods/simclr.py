"""SimCLR (Chen, Kornblith, Norouzi, Hinton, ICML 2020) on the union of both domains.

A self-supervised reference without any adaptation: the two domains are pooled into one
unlabelled image set and the domain of an image is never used (only the paired sampler's
"B images of A and B of B" fixes how many of each a batch holds). It shows what plain
contrastive learning on the target data gives a retrieval table, next to ``instdisc`` (one
memory bank per domain) and the cross-domain methods.

Algorithm (reads top to bottom like ``fit``):
    1. f_θ = backbone + projection MLP (SimCLR's g(·)); no memory, no momentum encoder.
    2. for each epoch, for each paired batch (B images of A and B of B, two augmented views
       each, i.e. N = 2B images and 2N views mixing both domains):
           z = f_θ(all 2N views in one forward pass)       (BatchNorm over the whole batch)
           L = NT-Xent_τ(z)          (Eq. 1: positive = the other view, negatives = the other
                                      2N − 2 views of either domain)
           SGD step (lr cosine-annealed per step)
    3. retrieval features = L2-normalised ``embedding`` of the eval view: 'backbone' = SimCLR's
       h (the representation it evaluates, §4.2: better than the projection) or 'head' = z.

Readings where this setting departs from the paper, each recorded in ``describe``:
    - SGD with momentum and a per-step cosine schedule instead of LARS with a 10-epoch linear
      warm-up (LARS matters for batch 4096 from scratch; the harness fine-tunes smaller batches).
    - the train transform is the dataset's own (applied twice), not SimCLR's colour-heavy
      augmentation, so every method of a grid sees the same views.
    - an image drawn twice in one batch (the smaller domain is re-drawn to fill an epoch) has
      its second copy's views among its negatives, as SimCLR would with duplicate images.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.nt_xent import NTXent
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.methods.ucdir import with_two_views
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.registry import BACKBONES, METHODS, build

UNION_ADAPTATION = ("none: self-supervised on the union of both domains; domain labels are never "
                    "used and nothing aligns the domains")


@METHODS.register_module(name="simclr")
class SimCLR(Method):
    """SimCLR contrastive learning on both domains pooled (Chen et al., ICML 2020); label-free.

    Class defaults are SimCLR's (MLP head to 128-d, τ 0.5, weight decay 1e-6, 100 epochs, lr
    0.3 per 256 images); ``benchmarks/_base_/methods/simclr.py`` sets the harness's
    MoCo-v2-initialised ResNet-50 schedule.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp' = SimCLR's g(·), 'linear', 'none').
        low_dim: projection width (128).
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step (N = 2·batch_size images, 4·batch_size views).
        lr: initial learning rate, cosine-annealed to zero per step.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of NT-Xent.
        embedding: retrieval features, 'backbone' (h, SimCLR's evaluated representation) or
            'head' (z); L2-normalised either way.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "self-supervised"
    distance: ClassVar[str] = "cosine"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "simclr"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 100,
                 batch_size: int = 128, lr: float = 0.3, momentum: float = 0.9,
                 weight_decay: float = 1e-6, temperature: float = 0.5,
                 embedding: str = "backbone", device: str = "cpu", num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.nt_xent = NTXent(temperature)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.embedding = embedding
        self.num_workers = num_workers
        self.history: list[dict[str, float]] = []
        # Simulated pre-emption for tests and drills: stop right after saving this epoch.
        self.stop_after_epoch: int | None = None

    def loss_terms(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """NT-Xent of one paired batch of two-view images ``[B, 2, C, H, W]`` per domain.

        Both domains' images form one batch of N = 2B images: one forward pass over the 2N
        views (SimCLR's global BatchNorm), negatives from either domain.
        """
        images = torch.cat([x_a, x_b]).to(self.device, non_blocking=True)    # [2B, 2, C, H, W]
        projections = self.encoder(torch.cat([images[:, 0], images[:, 1]]))
        first_views, second_views = projections.chunk(2)
        return {"L_NTXent": self.nt_xent(first_views, second_views)}

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        two_view_pair = with_two_views(pair)
        optimizer = make_sgd(self.encoder.parameters(), self.lr, self.momentum, self.weight_decay)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch

        def train_epoch(epoch: int) -> dict[str, float]:
            self.encoder.train()
            meter = LossMeter()
            batches = progress_bar(two_view_pair.paired_batches(self.batch_size, generator,
                                                                num_workers=self.num_workers),
                                   total=steps_per_epoch, desc=f"simclr {epoch + 1}/{self.epochs}")
            for step, (x_a, _, x_b, _) in enumerate(batches):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step, total_steps))
                terms = self.loss_terms(x_a, x_b)
                check_finite(terms, epoch + 1, step + 1)
                optimizer.zero_grad(set_to_none=True)
                terms["L_NTXent"].backward()
                optimizer.step()
                meter.add(terms)
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "optimizer": optimizer,
                      "sampler": GeneratorState(generator)},
            train_epoch=train_epoch, stop_after_epoch=self.stop_after_epoch)

    def embed(self, domain: DomainData) -> np.ndarray:
        loader = domain.eval_loader(batch_size=max(2 * self.batch_size, 256),
                                    num_workers=self.num_workers)
        return embed_loader(self.encoder.embedding_module(self.embedding), loader, self.device,
                            normalize=True)

    def describe(self) -> dict:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "adaptation": UNION_ADAPTATION,
            "flags": {},
            "gap_decisions": {
                "batch": f"{self.batch_size} images from each domain per step form one SimCLR "
                         f"batch of N = {2 * self.batch_size} images, 2N views, one forward pass "
                         "(BatchNorm statistics over both domains)",
                "negatives": "the other 2N - 2 views of the batch, either domain",
                "temperature": self.nt_xent.temperature,
                "views": "two independent draws of the dataset's train transform per image",
                "optimizer": f"SGD momentum {self.momentum}, lr {self.lr} cosine to zero per step, "
                             f"weight decay {self.weight_decay} (SimCLR: LARS with a 10-epoch "
                             "linear warm-up)",
            },
            "final_losses": self.history[-1] if self.history else None,
        }
