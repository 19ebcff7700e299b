"""Supervised oracle: the upper bound of every table, trained with the true labels of both domains.

Not a U²CDR method — it reads ``DomainData.labels`` in ``fit`` (``uses_labels = True``), so
tables mark its row and leave it out of best/second highlighting. It answers "how good can
retrieval on these features get when the class structure is handed over?".

Objective (the choice, and why): supervised contrastive learning (SupCon, Khosla et al.,
NeurIPS 2020) on the union of both domains' batches. Same-class images of *both* domains are
positives of each other, so each class is pulled together across domains in the very space
that is retrieved (Euclidean ranking of normalised features). A cross-entropy classifier
shared by the domains would also align classes, but only through its decision boundaries;
SupCon shapes the embedding directly and needs no extra head. ``cross_domain_positives=False``
runs SupCon per domain instead (classes grouped within each domain only), which isolates how
much of the bound comes from cross-domain pairing.

Open set: with the labels seen in training the oracle also knows which query classes the
gallery lacks. ``private_detection='class_means'`` flags a query private when its nearest
query-domain class mean (final features, training labels) belongs to a class absent from the
gallery; 'generic' leaves it to the harness's App. B.2 rule, as for every other method.

Algorithm (reads top to bottom like ``fit``):
    1. for each epoch, for each paired batch (B images of A, B of B, one augmented view each):
           z = f_θ([x_A; x_B]) (normalised head output), y = [y_A; y_B] (true labels)
           L = SupCon(z, y)             (or SupCon(z_A, y_A) + SupCon(z_B, y_B) per domain)
           SGD step (lr cosine-annealed per step)
    2. class means of the query domain's final features; the gallery's class set.
    3. retrieval features = normalised head output (or pooled backbone) of the eval view.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.supervised_contrastive import SupervisedContrastiveLoss
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.registry import BACKBONES, METHODS, build

PRIVATE_DETECTIONS = ("class_means", "generic")

ADAPTATION = ("not label-free: an oracle trained with the true labels of both domains "
              "(SupCon on the union of the two domains' batches, so same-class images of both "
              "domains are positives); marks the upper bound, never ranked")


@METHODS.register_module(name="supervised_oracle")
class SupervisedOracle(Method):
    """Oracle upper bound: SupCon with the true labels of both domains (Khosla et al., NeurIPS 2020).

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none').
        low_dim: projection width.
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step.
        lr: initial learning rate, cosine-annealed to zero.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: SupCon's τ (0.1 in Khosla et al.).
        cross_domain_positives: one SupCon over both domains (True) or one per domain (False).
        private_detection: 'class_means' (label-informed, see the module docstring) or
            'generic' (the harness's App. B.2 rule).
        embedding: retrieval features, 'head' or 'backbone'.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    uses_labels: ClassVar[bool] = True
    family: ClassVar[str] = "oracle"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "supervised_oracle"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 100,
                 batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.1,
                 cross_domain_positives: bool = True, private_detection: str = "class_means",
                 embedding: str = "head", device: str = "cpu", num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        if private_detection not in PRIVATE_DETECTIONS:
            raise ValueError(f"private_detection={private_detection!r} is unknown; valid: "
                             f"{', '.join(PRIVATE_DETECTIONS)}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.supcon = SupervisedContrastiveLoss(temperature=temperature)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.cross_domain_positives = cross_domain_positives
        self.private_detection = private_detection
        self.embedding = embedding
        self.num_workers = num_workers
        self.history: list[dict[str, float]] = []
        self.query_class_means: np.ndarray | None = None    # [C_A, D]
        self.query_classes: np.ndarray | None = None        # [C_A] class ids of those means
        self.gallery_classes: np.ndarray | None = None      # class ids present in the gallery
        # Simulated pre-emption for tests and drills: stop right after saving this epoch.
        self.stop_after_epoch: int | None = None

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        labels_a = torch.as_tensor(np.asarray(pair.query.labels), dtype=torch.long)
        labels_b = torch.as_tensor(np.asarray(pair.gallery.labels), dtype=torch.long)
        optimizer = make_sgd(self.encoder.parameters(), self.lr, self.momentum, self.weight_decay)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch

        def train_epoch(epoch: int) -> dict[str, float]:
            self.encoder.train()
            meter = LossMeter()
            batches = progress_bar(pair.paired_batches(self.batch_size, generator,
                                                       num_workers=self.num_workers),
                                   total=steps_per_epoch,
                                   desc=f"{self.stage} {epoch + 1}/{self.epochs}")
            for step, (x_a, idx_a, x_b, idx_b) in enumerate(batches):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step, total_steps))
                z_a = self.encoder(x_a.to(self.device, non_blocking=True))
                z_b = self.encoder(x_b.to(self.device, non_blocking=True))
                terms = self.loss_terms(z_a, labels_a[idx_a], z_b, labels_b[idx_b])
                check_finite(terms, epoch + 1, step + 1)
                loss = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                meter.add({"loss": loss, **terms})
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "optimizer": optimizer,
                      "sampler": GeneratorState(generator)},
            train_epoch=train_epoch, stop_after_epoch=self.stop_after_epoch)
        self._remember_classes(pair)

    def loss_terms(self, z_a: torch.Tensor, y_a: torch.Tensor, z_b: torch.Tensor,
                   y_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """SupCon over the joint batch (cross-domain positives) or per domain."""
        if self.cross_domain_positives:
            return {"L_SupCon": self.supcon(torch.cat([z_a, z_b]), torch.cat([y_a, y_b]))}
        return {"L_SupCon_A": self.supcon(z_a, y_a), "L_SupCon_B": self.supcon(z_b, y_b)}

    def _remember_classes(self, pair: DomainPair) -> None:
        """Query-domain class means of the final retrieval features, and the gallery's classes."""
        features = self.embed(pair.query)
        labels = np.asarray(pair.query.labels)
        self.query_classes = np.unique(labels)
        self.query_class_means = np.stack([features[labels == c].mean(axis=0)
                                           for c in self.query_classes]).astype(np.float32)
        self.gallery_classes = np.unique(np.asarray(pair.gallery.labels))

    def embed(self, domain: DomainData) -> np.ndarray:
        loader = domain.eval_loader(batch_size=max(self.batch_size, 256), num_workers=self.num_workers)
        if self.embedding == "head":
            return embed_loader(self.encoder, loader, self.device)
        return embed_loader(self.encoder.backbone, loader, self.device, normalize=True)

    def detect_private(self, query_features: np.ndarray,
                       gallery_features: np.ndarray) -> np.ndarray | None:
        """Private = the nearest query class mean is a class the gallery lacks (label-informed)."""
        if self.private_detection == "generic":
            return None
        if self.query_class_means is None:
            raise RuntimeError("detect_private needs a fitted oracle (class means come from fit)")
        squared = (np.einsum("nd,nd->n", query_features, query_features)[:, None]
                   - 2.0 * query_features @ self.query_class_means.T
                   + np.einsum("cd,cd->c", self.query_class_means, self.query_class_means)[None, :])
        nearest_class = self.query_classes[np.argmin(squared, axis=1)]
        return ~np.isin(nearest_class, self.gallery_classes)

    def describe(self) -> dict:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "adaptation": ADAPTATION,
            "gap_decisions": {
                "objective": ("SupCon L_out over the union of both domains' batches "
                              "(cross-domain positives)" if self.cross_domain_positives
                              else "SupCon L_out within each domain, summed"),
                "temperature": self.supcon.temperature,
                "views": "one augmented view per image per step (labels supply the positives)",
                "private_detection": ("nearest query-domain class mean of a class absent from the "
                                      "gallery (training labels)" if self.private_detection ==
                                      "class_means" else "generic App. B.2 rule"),
                "lr_schedule": "cosine to zero, per step",
            },
            "final_losses": self.history[-1] if self.history else None,
        }
