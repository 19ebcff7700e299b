"""DARLING: MoCo-v2 contrast whose negatives are drawn per domain, mixed by domain similarity.

Zhang, Zhou, Xu, Cui, Shen, Liu, "Towards unsupervised domain generalization", CVPR 2022.
UEM (App. B.2) runs it as a UDG baseline with its classifier-training parts dropped: only the
self-supervised pre-training remains, and retrieval ranks its features with UCDIR's cosine
nearest-neighbour search (``distance = 'cosine'``); open-set cells use the generic rule.

Algorithm (reads top to bottom like ``fit``):
    1. f_θ = backbone + MLP head (query encoder); f_ξ = its momentum copy (key encoder);
       h = domain-similarity predictor; Q_A, Q_B = one FIFO key queue per domain.
    2. for each epoch, for each paired batch (B images of A, B of B, two augmented views each):
           q = f_θ(view 1);  ξ ← m ξ + (1 − m) θ;  k = f_ξ(view 2)
           w = [P(A | x), P(B | x)] = [σ(h(x)), 1 − σ(h(x))]
           L = DARLING(q_A, k_A, {Q_A, Q_B}, w_A) + DARLING(q_B, k_B, {Q_A, Q_B}, w_B)
               + λ · BCE(h(x), domain of x)
           SGD step (lr cosine-annealed per step);  Q_A ← k_A,  Q_B ← k_B
    3. retrieval features = normalised head output of f_θ on the eval view.

Readings taken (no official code; recorded in ``describe()``):
    * Loss: ``-log Σ_d P(d|x) · exp(q·k⁺/τ) / (exp(q·k⁺/τ) + Σ_{n∈Q_d} exp(q·n/τ))`` — the
      positive's likelihood when the negatives are all drawn from one domain d picked with
      probability P(d|x) (``aggregation='mixture'``); ``'expected'`` is its Jensen upper bound
      ``Σ_d P(d|x)·(−log p_d)``. Each domain keeps its own queue (DARLING's per-domain
      negative sets).
    * Similarity predictor: the paper's h is a network of its own trained with the domain
      labels (which UDG, like U²CDR, knows: every image's domain is given). Here h is
      ``DomainClassifier`` (two FC layers) on the *detached* pooled backbone features of the
      query view, trained with binary cross-entropy: it reuses the backbone's computation
      but cannot shape f_θ, and its output weighs the negatives without gradient.
    * BatchNorm of the key encoder: keys are computed in train mode on their own domain's
      batch, like the queries (MoCo's shuffled BN needs several devices). Measured on digits:
      keys in eval mode (running statistics) collapsed (loss → log K, mAP 11 on a subset), and
      keys from two randomly mixed halves of both domains fell to 15.0 / 14.9 against 19.2 /
      19.0. A queue is never longer than its domain.
    * Per-domain forward passes (the harness's UCDIR convention) leave the predictor little
      to go on: BatchNorm over a one-domain batch removes the domains' first-order statistics
      (a logistic regression on a random small_cnn's pooled features tells MNIST from UCI at
      50 % with per-domain batches, 100 % with mixed ones), so P(d|x) stays soft for the first
      epochs. One mixed forward pass for queries and keys fixes the predictor (BCE 0.003) but
      the contrast then fails on digits (12.2 / 11.3), so the per-domain passes stay.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.domain_aware_nce import AGGREGATIONS, DomainAwareNCE
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.models.feature_queue import FeatureQueue
from u2cdr.models.momentum import momentum_copy, momentum_update
from u2cdr.registry import BACKBONES, METHODS, build


DOMAINS = ("A", "B")


class TwoViews:
    """Two independent draws of ``transform`` stacked as ``[2, C, H, W]`` (query and key view)."""

    def __init__(self, transform: Callable[[object], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, image: object) -> torch.Tensor:
        return torch.stack([self.transform(image), self.transform(image)])


@METHODS.register_module(name="darl")
class DARL(Method):
    """DARLING domain-aware contrastive pre-training (Zhang et al., CVPR 2022), no classifier.

    Class defaults are MoCo-v2's (lr 0.03, weight decay 1e-4, τ 0.2, m 0.999);
    ``benchmarks/_base_/methods/darl.py`` sets UEM's MoCo-v2-initialised schedule.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none').
        low_dim: projection width (128).
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step.
        lr: initial learning rate, cosine-annealed to zero.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of the contrastive loss.
        key_momentum: m of the key encoder's EMA.
        queue_size: keys kept per domain (capped at the domain's size).
        aggregation: 'mixture' (−log of the domain mixture) or 'expected' (its upper bound).
        predictor_hidden: hidden width of the domain-similarity predictor.
        predictor_weight: λ, weight of the predictor's cross-entropy.
        embedding: retrieval features, 'head' or 'backbone' (L2-normalised either way).
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "UDG"
    distance: ClassVar[str] = "cosine"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "darl"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 1e-4, temperature: float = 0.2, key_momentum: float = 0.999,
                 queue_size: int = 4096, aggregation: str = "mixture", predictor_hidden: int = 256,
                 predictor_weight: float = 1.0, embedding: str = "head", device: str = "cpu",
                 num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={aggregation!r} is unknown; valid: {', '.join(AGGREGATIONS)}")
        if epochs < 1 or batch_size < 1 or queue_size < 1:
            raise ValueError(f"epochs, batch_size and queue_size must be >= 1, got {epochs}, "
                             f"{batch_size} and {queue_size}")
        if not 0.0 <= key_momentum < 1.0:
            raise ValueError(f"key_momentum must lie in [0, 1), got {key_momentum}")
        if predictor_weight < 0:
            raise ValueError(f"predictor_weight must be >= 0, got {predictor_weight}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.key_encoder = momentum_copy(self.encoder)
        self.predictor = DomainClassifier(self.encoder.backbone.out_dim,
                                          predictor_hidden).to(self.device)
        self.darling = DomainAwareNCE(temperature=temperature, aggregation=aggregation)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.key_momentum = key_momentum
        self.queue_size = queue_size
        self.predictor_weight = predictor_weight
        self.embedding = embedding
        self.num_workers = num_workers
        self.queues: dict[str, FeatureQueue] = {}
        self.history: list[dict[str, float]] = []
        self.stop_after_epoch: int | None = None

    def build_queues(self, pair: DomainPair) -> None:
        """One key queue per domain, as long as ``queue_size`` or the domain, whichever is less."""
        self.queues = {domain: FeatureQueue(self.encoder.out_dim,
                                            min(self.queue_size, len(data))).to(self.device)
                       for domain, data in zip(DOMAINS, (pair.query, pair.gallery))}

    def loss_terms(self, views_a: torch.Tensor, views_b: torch.Tensor) -> tuple[dict[str, torch.Tensor],
                                                                              dict[str, torch.Tensor]]:
        """Loss terms of one paired batch of two-view images ``[B, 2, C, H, W]`` per domain.

        Also moves the key encoder one EMA step. Returns ``(terms, keys)``; the caller enqueues
        ``keys[d]`` into ``queues[d]`` after the optimiser step.
        """
        momentum_update(self.key_encoder, self.encoder, self.key_momentum)
        self.key_encoder.train()
        terms: dict[str, torch.Tensor] = {}
        keys: dict[str, torch.Tensor] = {}
        logits, targets = [], []
        negatives = [self.queues[domain].entries for domain in DOMAINS]
        for domain, views in zip(DOMAINS, (views_a, views_b)):
            views = views.to(self.device, non_blocking=True)
            pooled = self.encoder.backbone(views[:, 0])
            query = self.encoder.head(pooled)
            with torch.no_grad():
                keys[domain] = self.key_encoder(views[:, 1])
            domain_logit = self.predictor(pooled.detach())
            p_a = torch.sigmoid(domain_logit)
            weights = torch.stack([p_a, 1.0 - p_a], dim=1)
            terms[f"L_DARL_{domain}"] = self.darling(query, keys[domain], negatives, weights)
            logits.append(domain_logit)
            targets.append(torch.full_like(domain_logit, 1.0 if domain == "A" else 0.0))
        terms["L_domain"] = F.binary_cross_entropy_with_logits(torch.cat(logits), torch.cat(targets))
        return terms, keys

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return terms["L_DARL_A"] + terms["L_DARL_B"] + self.predictor_weight * terms["L_domain"]

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        self.build_queues(pair)
        two_view_pair = replace(
            pair, query=replace(pair.query, train_transform=TwoViews(pair.query.train_transform)),
            gallery=replace(pair.gallery, train_transform=TwoViews(pair.gallery.train_transform)))
        parameters = list(self.encoder.parameters()) + list(self.predictor.parameters())
        optimizer = make_sgd(parameters, self.lr, self.momentum, self.weight_decay)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch

        def train_epoch(epoch: int) -> dict[str, float]:
            self.encoder.train()
            self.predictor.train()
            meter = LossMeter()
            batches = two_view_pair.paired_batches(self.batch_size, generator,
                                                   num_workers=self.num_workers)
            for step, (views_a, _, views_b, _) in enumerate(
                    progress_bar(batches, total=steps_per_epoch, desc=f"darl {epoch + 1}/{self.epochs}")):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step, total_steps))
                terms, keys = self.loss_terms(views_a, views_b)
                check_finite(terms, epoch + 1, step + 1)
                loss = self.total_loss(terms)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for domain in DOMAINS:
                    self.queues[domain].enqueue(keys[domain])
                meter.add({"loss": loss, **terms})
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "key_encoder": self.key_encoder,
                      "predictor": self.predictor, "optimizer": optimizer,
                      "queue_A": self.queues["A"], "queue_B": self.queues["B"],
                      "sampler": GeneratorState(generator)},
            train_epoch=train_epoch, stop_after_epoch=self.stop_after_epoch)

    def embed(self, domain: DomainData) -> np.ndarray:
        loader = domain.eval_loader(batch_size=max(self.batch_size, 256), num_workers=self.num_workers)
        return embed_loader(self.encoder.embedding_module(self.embedding), loader, self.device,
                            normalize=True)

    def describe(self) -> dict:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "distance": self.distance,
            "queue_sizes": {domain: len(queue.entries) for domain, queue in self.queues.items()},
            "gap_decisions": {
                "aggregation": f"{self.darling.aggregation} ('mixture' = −log Σ_d P(d|x)·p_d, "
                               "'expected' = Σ_d P(d|x)·(−log p_d))",
                "negatives": "one FIFO queue of momentum keys per domain (DARLING's per-domain "
                             "negative sets), each capped at its domain's size",
                "similarity_predictor": "DomainClassifier on detached pooled backbone features of "
                                        "the query view, BCE on the known domain of each image; "
                                        "its probabilities weigh the negatives without gradient",
                "key_batchnorm": "keys in train mode with their own domain's batch statistics "
                                 "(no shuffled BN on one device)",
                "classifier": "dropped (UEM App. B.2: retrieval needs no classifier)",
                "nn_search": "UCDIR's cosine search (UEM App. B.2); open set uses the generic rule",
                "lr_schedule": "cosine to zero, per step",
                "batch": "batch_size images from each domain per step, each domain its own "
                         "forward pass",
            },
            "final_losses": self.history[-1] if self.history else None,
        }
