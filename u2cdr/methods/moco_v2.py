"""MoCo v2 (Chen, Fan, Girshick, He, "Improved baselines with momentum contrastive learning",
2020; MoCo: He et al., CVPR 2020) on the union of both domains.

A self-supervised reference without any adaptation: the two domains are pooled into one
unlabelled image set; a query's negatives are the keys of one FIFO queue that both domains
fill, and the domain of an image is never used. ``pcl`` builds on this class.

Algorithm (reads top to bottom like ``fit``):
    1. f_q = backbone + MLP head (query encoder); f_k = its momentum copy (key encoder);
       U = one queue of ``queue_size`` keys (random unit vectors at first).
    2. for each epoch, for each paired batch (B images of A and B of B, two augmented views each,
       one batch of 2B images of both domains):
           q = f_q(view 1)                                   (one forward pass over the 2B)
           θ_k ← m θ_k + (1 − m) θ_q;  k = f_k(view 2)       (no gradient)
           L = InfoNCE_τ(q, k, U)     (positive = own key, negatives = the queue, own older keys
                                       masked when ``mask_own_keys``)
           SGD step (lr cosine-annealed per step);  U ← enqueue k  (after the step)
    3. retrieval features = L2-normalised ``embedding`` of f_q on the eval view ('backbone' =
       the encoder MoCo evaluates, or 'head').

Readings, each recorded in ``describe``:
    - shuffle BN: MoCo shuffles the key batch across GPUs so that a query and its key are not
      normalised with statistics of the same per-device sub-batch (the "cheating" of §3.3). On
      one process there are no per-device sub-batches: queries and keys are each normalised over
      the whole 2B-image batch, so MoCo's one-process run is plain BN (``key_bn_splits=1``);
      ``key_bn_splits>1`` simulates several devices (UCDIR's SplitBatchNorm on a shuffled batch).
    - ``mask_own_keys=True``: the queue (65,536 at paper scale) is longer than an epoch of two
      domains (Office-Home pairs hold ~9,000 images), so it holds older keys of a query's own
      image; they are removed from its negatives (as DG-UCDIR does). On ImageNet
      (1.28 M images) MoCo never meets this case, so masking changes nothing there.
    - SGD lr cosine-annealed per step (MoCo v2: per epoch); the dataset's own train transform
      applied twice instead of MoCo v2's augmentation, so a grid's methods see the same views.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.queue_info_nce import QueueInfoNCE
from u2cdr.methods._trainer import (GeneratorState, LossMeter, Stateful, check_finite, cosine_lr,
                                    make_sgd, progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.methods.dgdir import OwnedFeatureQueue
from u2cdr.methods.simclr import UNION_ADAPTATION
from u2cdr.methods.ucdir import with_two_views
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.models.momentum import momentum_copy, momentum_update
from u2cdr.registry import BACKBONES, METHODS, build


def union_ids(idx_a: torch.Tensor, idx_b: torch.Tensor, size_a: int) -> torch.Tensor:
    """Row of each image in the union ``[A; B]``: A's index as is, B's shifted by ``|A|``."""
    return torch.cat([idx_a, idx_b + size_a])


@METHODS.register_module(name="moco_v2")
class MoCoV2(Method):
    """MoCo v2 on both domains pooled, one shared key queue (Chen et al., 2020); label-free.

    Class defaults are MoCo v2's ImageNet settings (MLP head, τ 0.2, m 0.999, queue 65,536,
    lr 0.03 for 256 images, weight decay 1e-4, 200 epochs); ``benchmarks/_base_/methods/
    moco_v2.py`` sets the harness's MoCo-v2-initialised ResNet-50 schedule.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp' = MoCo v2's, 'linear' = MoCo v1's, 'none').
        low_dim: projection width (128).
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step (2·batch_size images per MoCo batch).
        lr: initial learning rate, cosine-annealed to zero per step.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of InfoNCE.
        key_momentum: m of the key encoder's EMA.
        queue_size: keys in the queue shared by both domains.
        mask_own_keys: drop a query's own image's older keys from its negatives.
        key_bn_splits: chunks of the shuffled key batch (1 = one process, no shuffle needed).
        embedding: retrieval features of the query encoder, 'backbone' or 'head'.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "self-supervised"
    distance: ClassVar[str] = "cosine"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "moco_v2"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 128, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 1e-4, temperature: float = 0.2, key_momentum: float = 0.999,
                 queue_size: int = 65536, mask_own_keys: bool = True, key_bn_splits: int = 1,
                 embedding: str = "backbone", device: str = "cpu", num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        if epochs < 1 or batch_size < 1 or queue_size < 1:
            raise ValueError(f"epochs, batch_size and queue_size must be >= 1, got {epochs}, "
                             f"{batch_size} and {queue_size}")
        if not 0.0 <= key_momentum < 1.0:
            raise ValueError(f"key_momentum must lie in [0, 1), got {key_momentum}")
        if not 1 <= key_bn_splits <= 2 * batch_size:
            raise ValueError(f"key_bn_splits must lie in 1..2*batch_size ({2 * batch_size}), got "
                             f"{key_bn_splits}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.key_encoder = momentum_copy(self.encoder)
        self.info_nce = QueueInfoNCE(temperature)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.key_momentum = key_momentum
        self.queue_size = queue_size
        self.mask_own_keys = mask_own_keys
        self.key_bn_splits = key_bn_splits
        self.embedding = embedding
        self.num_workers = num_workers
        self.queue = OwnedFeatureQueue(self.encoder.out_dim, queue_size).to(self.device)
        self.history: list[dict[str, float]] = []
        # Simulated pre-emption for tests and drills: stop right after saving this epoch.
        self.stop_after_epoch: int | None = None

    # ----- hooks for methods built on MoCo (PCL) ------------------------------------------
    def prepare_epoch(self, epoch: int, pair: DomainPair) -> None:
        """Before every epoch (0-based), including the first of a resumed run."""

    def extra_terms(self, epoch: int, queries: torch.Tensor,
                    image_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Further named loss terms from the queries ``[2B, D]`` and their union rows."""
        return {}

    def total_loss(self, epoch: int, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return terms["L_instance"]

    def extra_state(self) -> dict[str, Stateful]:
        return {}

    # ----- one step ------------------------------------------------------------------------
    @torch.no_grad()
    def keys(self, images: torch.Tensor) -> torch.Tensor:
        """Key-encoder projections of ``images`` after the momentum update (MoCo's order).

        With ``key_bn_splits > 1`` the batch is shuffled and normalised in that many chunks
        (shuffle BN on one process), then put back in order.
        """
        momentum_update(self.key_encoder, self.encoder, self.key_momentum)
        if self.key_bn_splits == 1:
            return self.key_encoder(images)
        order = torch.randperm(len(images)).to(images.device)
        keys = torch.cat([self.key_encoder(chunk)
                          for chunk in images[order].chunk(self.key_bn_splits)])
        return keys[torch.argsort(order)]

    def loss_terms(self, epoch: int, x_a: torch.Tensor, idx_a: torch.Tensor, x_b: torch.Tensor,
                   idx_b: torch.Tensor, size_a: int) -> tuple[dict[str, torch.Tensor],
                                                              torch.Tensor, torch.Tensor]:
        """Named loss terms of one paired batch of two-view images ``[B, 2, C, H, W]`` per
        domain, and the keys with their union rows (to enqueue after the step)."""
        images = torch.cat([x_a, x_b]).to(self.device, non_blocking=True)    # [2B, 2, C, H, W]
        image_ids = union_ids(idx_a, idx_b, size_a).to(self.device)
        queries = self.encoder(images[:, 0])
        keys = self.keys(images[:, 1])
        owners = (self.queue.owners, image_ids) if self.mask_own_keys else (None, None)
        terms = {"L_instance": self.info_nce(queries, keys, self.queue.entries, *owners)}
        terms.update(self.extra_terms(epoch, queries, image_ids))
        return terms, keys, image_ids

    # ----- training ------------------------------------------------------------------------
    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        two_view_pair = with_two_views(pair)
        optimizer = make_sgd(self.encoder.parameters(), self.lr, self.momentum, self.weight_decay)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch

        def train_epoch(epoch: int) -> dict[str, float]:
            self.prepare_epoch(epoch, pair)
            self.encoder.train()
            self.key_encoder.train()
            meter = LossMeter()
            batches = progress_bar(two_view_pair.paired_batches(self.batch_size, generator,
                                                                num_workers=self.num_workers),
                                   total=steps_per_epoch,
                                   desc=f"{self.stage} {epoch + 1}/{self.epochs}")
            for step, (x_a, idx_a, x_b, idx_b) in enumerate(batches):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step, total_steps))
                terms, keys, image_ids = self.loss_terms(epoch, x_a, idx_a, x_b, idx_b,
                                                         len(pair.query))
                check_finite(terms, epoch + 1, step + 1)
                loss = self.total_loss(epoch, terms)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self.queue.enqueue_owned(keys, image_ids)
                meter.add({"loss": loss, **terms})
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "key_encoder": self.key_encoder,
                      "optimizer": optimizer, "queue": self.queue,
                      "sampler": GeneratorState(generator), **self.extra_state()},
            train_epoch=train_epoch, stop_after_epoch=self.stop_after_epoch)

    # ----- retrieval -----------------------------------------------------------------------
    def embed(self, domain: DomainData) -> np.ndarray:
        return embed_loader(self.encoder.embedding_module(self.embedding), self._loader(domain),
                            self.device, normalize=True)

    def _loader(self, domain: DomainData) -> torch.utils.data.DataLoader:
        return domain.eval_loader(batch_size=max(2 * self.batch_size, 256),
                                  num_workers=self.num_workers)

    def describe(self) -> dict[str, Any]:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "adaptation": UNION_ADAPTATION,
            "embed_encoder": "query",
            "flags": {},
            "gap_decisions": {
                "batch": f"{self.batch_size} images from each domain per step form one MoCo batch "
                         f"of {2 * self.batch_size}, one forward pass per encoder (BatchNorm "
                         "statistics over both domains)",
                "queue": f"one queue of {self.queue_size} keys shared by both domains, random unit "
                         "vectors at first, keys enqueued after the optimiser step",
                "own_keys": "masked from a query's negatives" if self.mask_own_keys else
                            "kept as negatives (MoCo)",
                "shuffle_bn": f"key batch in {self.key_bn_splits} shuffled chunk(s); 1 = one "
                              "process, where MoCo's cross-device shuffle has no sub-batches to "
                              "shuffle between",
                "key_encoder": f"momentum {self.key_momentum}; BatchNorm running statistics copied "
                               "from the query encoder at every update (u2cdr.models.momentum)",
                "views": "two independent draws of the dataset's train transform per image",
                "optimizer": f"SGD momentum {self.momentum}, lr {self.lr} cosine to zero per step, "
                             f"weight decay {self.weight_decay}",
            },
            "final_losses": self.history[-1] if self.history else None,
        }
