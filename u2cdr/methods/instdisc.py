"""Per-domain instance discrimination with momentum memory banks (UEM Eqs. 5–6; NPID).

This is UEM's stage-1 backbone without prototypes: one shared encoder, one memory bank and one
InstanceNCE per domain, loss ``L = L_INCE^A + L_INCE^B`` on paired batches. As a baseline it
shows what self-supervision alone gives; as code it is the skeleton UEM's IDSE stage reuses.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of every image under the initial model (Eq. 5 init).
    2. for each epoch, for each paired batch (B images of A, B of B, one augmented view each):
           z_A, z_B = f_θ(x_A), f_θ(x_B)
           L = INCE(z_A, M_A) + INCE(z_B, M_B)                         (Eq. 6, per domain)
           SGD step (lr cosine-annealed per step);  M ← β M + (1 − β) z  (Eq. 5)
    3. retrieval features = normalised head output of the eval view.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.instance_nce import InstanceNCE
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.models.memory_bank import MomentumMemoryBank
from u2cdr.registry import BACKBONES, METHODS, build

logger = logging.getLogger("u2cdr")


@METHODS.register_module(name="instdisc")
class InstDisc(Method):
    """Instance discrimination per domain against momentum memory banks (NPID, Wu et al., CVPR 2018).

    The defaults are for training from random initialisation (NPID: lr 0.03, weight decay
    5e-4, τ 0.07); ``benchmarks/_base_/methods/instdisc.py`` sets UEM's MoCo-v2-initialised
    schedule (lr 2e-4, batch 64, 100 epochs).

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none').
        low_dim: projection width (128).
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step (B of A and B of B).
        lr: initial learning rate, cosine-annealed to zero.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of Eq. 6.
        bank_momentum: β of Eq. 5.
        renormalize_bank: L2-normalise bank entries after each update ([GAP], NPID practice).
        negatives: 'bank' (all entries of the domain's bank) or 'batch' (printed Eq. 6).
        embedding: retrieval features, 'head' (normalised projection) or 'backbone' (pooled,
            L2-normalised).
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "self-supervised"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "instdisc"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank", embedding: str = "head",
                 device: str = "cpu", num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.instance_nce = InstanceNCE(temperature=temperature, negatives=negatives)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.bank_momentum = bank_momentum
        self.renormalize_bank = renormalize_bank
        self.embedding = embedding
        self.num_workers = num_workers
        self.history: list[dict[str, float]] = []
        # Simulated pre-emption for tests and drills: stop right after saving this epoch.
        self.stop_after_epoch: int | None = None

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        banks = {domain: MomentumMemoryBank(len(data), self.encoder.out_dim, self.bank_momentum,
                                            self.renormalize_bank).to(self.device)
                 for domain, data in (("A", pair.query), ("B", pair.gallery))}
        optimizer = make_sgd(self.encoder.parameters(), self.lr, self.momentum, self.weight_decay)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch

        def initialize_banks() -> None:
            banks["A"].initialize(torch.from_numpy(self._embed_head(pair.query)))
            banks["B"].initialize(torch.from_numpy(self._embed_head(pair.gallery)))

        def train_epoch(epoch: int) -> dict[str, float]:
            self.encoder.train()
            meter = LossMeter()
            batches = progress_bar(pair.paired_batches(self.batch_size, generator,
                                                       num_workers=self.num_workers),
                                   total=steps_per_epoch, desc=f"instdisc {epoch + 1}/{self.epochs}")
            for step, (x_a, idx_a, x_b, idx_b) in enumerate(batches):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step, total_steps))
                z_a = self.encoder(x_a.to(self.device, non_blocking=True))
                z_b = self.encoder(x_b.to(self.device, non_blocking=True))
                terms = {"L_INCE_A": self.instance_nce(z_a, idx_a, banks["A"].entries),
                         "L_INCE_B": self.instance_nce(z_b, idx_b, banks["B"].entries)}
                check_finite(terms, epoch + 1, step + 1)
                loss = terms["L_INCE_A"] + terms["L_INCE_B"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                banks["A"].update(idx_a, z_a)
                banks["B"].update(idx_b, z_b)
                meter.add({"loss": loss, **terms})
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "optimizer": optimizer, "bank_A": banks["A"],
                      "bank_B": banks["B"], "sampler": GeneratorState(generator)},
            train_epoch=train_epoch, initialize=initialize_banks,
            stop_after_epoch=self.stop_after_epoch)

    def embed(self, domain: DomainData) -> np.ndarray:
        if self.embedding == "head":
            return self._embed_head(domain)
        return embed_loader(self.encoder.backbone, self._loader(domain), self.device, normalize=True)

    def _embed_head(self, domain: DomainData) -> np.ndarray:
        return embed_loader(self.encoder, self._loader(domain), self.device)

    def _loader(self, domain: DomainData) -> torch.utils.data.DataLoader:
        return domain.eval_loader(batch_size=max(self.batch_size, 256), num_workers=self.num_workers)

    def describe(self) -> dict:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "gap_decisions": {
                "negatives": f"{self.instance_nce.negatives} (Eq. 6 text 'all other instances' = "
                             "whole bank; printed sum over the batch = 'batch')",
                "bank_renormalize": self.renormalize_bank,
                "bank_init": "eval-mode, eval-transform normalised head features of the initial model",
                "bank_duplicates": "an index drawn twice in a batch is updated once with its mean feature",
                "views": "one augmented view per image per step; the bank is updated with that feature",
                "loss_reduction": "mean over the batch per domain (Eq. 6 prints a sum)",
                "lr_schedule": "cosine to zero, per step",
                "batch": "batch_size images from each domain per step (UCDIR convention); each "
                         "domain's batch is a separate forward pass, so BatchNorm statistics are "
                         "per domain",
            },
            "final_losses": self.history[-1] if self.history else None,
        }
