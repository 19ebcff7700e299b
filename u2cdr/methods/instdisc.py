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

Several processes (``torchrun``, ``supports_ddp``): ``batch_size`` stays the global per-domain
batch and each rank trains on its slice; the encoder runs inside DDP with BatchNorm over the
global batch; the loss of each rank pairs its own features with the full bank; the banks are
updated with the batch gathered from every rank, so they stay identical; rank 0 writes the
checkpoints. Without random augmentation a step then equals the one-process step up to
float32 summation order (``u2cdr/engine/distributed.py``, tests/methods/test_ddp.py); with it,
each rank draws its own views (``augmentation_seed``), so runs agree in distribution only.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from u2cdr.data.pair import DomainData, DomainPair, rank_batch_size
from u2cdr.engine import distributed
from u2cdr.losses.instance_nce import InstanceNCE
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, checkpoint_interval,
                                    cosine_lr, make_sgd, progress_bar, resolve_device, run_epochs,
                                    set_lr)
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
    supports_ddp: ClassVar[bool] = True

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
        self.banks: dict[str, MomentumMemoryBank] = {}
        self.world_size = 1
        # Simulated pre-emption for tests and drills: stop right after saving this epoch.
        self.stop_after_epoch: int | None = None

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        world, rank = distributed.world_size(), distributed.rank()
        rank_batch_size(self.batch_size, world)  # a bad global batch fails before any work
        self.world_size = world
        self.banks = banks = {
            domain: MomentumMemoryBank(len(data), self.encoder.out_dim, self.bank_momentum,
                                       self.renormalize_bank).to(self.device)
            for domain, data in (("A", pair.query), ("B", pair.gallery))}
        self.encoder = distributed.synchronize_batchnorm(self.encoder)
        both_domains = distributed.wrap_ddp(_BothDomains(self.encoder))
        optimizer = make_sgd(self.encoder.parameters(), self.lr, self.momentum, self.weight_decay)
        # Every rank must draw the same epoch order to take its slice of it: rank 0's seed.
        base_seed = distributed.broadcast_object(torch.initial_seed())
        generator = torch.Generator().manual_seed(base_seed)
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)
        total_steps = self.epochs * steps_per_epoch

        def initialize_banks() -> None:
            # Every rank embeds the same data with the same (DDP-broadcast) weights: equal banks.
            banks["A"].initialize(torch.from_numpy(self._embed_head(pair.query)))
            banks["B"].initialize(torch.from_numpy(self._embed_head(pair.gallery)))

        def train_epoch(epoch: int) -> dict[str, float]:
            distributed.barrier()  # rank 0's checkpoint of the previous epoch is on disk
            if world > 1:
                torch.manual_seed(augmentation_seed(base_seed, epoch, rank, world))
            self.encoder.train()
            meter = LossMeter()
            batches = progress_bar(pair.paired_batches(self.batch_size, generator,
                                                       num_workers=self.num_workers,
                                                       rank=rank, world_size=world),
                                   total=steps_per_epoch, desc=f"instdisc {epoch + 1}/{self.epochs}")
            for step, (x_a, idx_a, x_b, idx_b) in enumerate(batches):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step, total_steps))
                batch_a = distributed.all_gather_cat(idx_a.to(self.device))
                batch_b = distributed.all_gather_cat(idx_b.to(self.device))
                z_a, z_b = both_domains(x_a.to(self.device, non_blocking=True),
                                        x_b.to(self.device, non_blocking=True))
                terms = {"L_INCE_A": self._instance_loss(z_a, idx_a, batch_a, banks["A"]),
                         "L_INCE_B": self._instance_loss(z_b, idx_b, batch_b, banks["B"])}
                logged = distributed.average_over_ranks(terms)
                check_finite(logged, epoch + 1, step + 1)
                loss = terms["L_INCE_A"] + terms["L_INCE_B"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # DDP averages the ranks' gradients: the global-batch mean
                optimizer.step()
                banks["A"].update(batch_a, distributed.all_gather_cat(z_a))
                banks["B"].update(batch_b, distributed.all_gather_cat(z_b))
                meter.add({"loss": logged["L_INCE_A"] + logged["L_INCE_B"], **logged})
            return meter.means()

        # Only rank 0 writes checkpoints; every rank reads the same one when resuming.
        saves = contextlib.nullcontext() if distributed.is_main() else checkpoint_interval(0)
        with saves:
            self.history = run_epochs(
                stage=self.stage, epochs=self.epochs, work_dir=work_dir,
                stateful={"encoder": self.encoder, "optimizer": optimizer, "bank_A": banks["A"],
                          "bank_B": banks["B"], "sampler": GeneratorState(generator)},
                train_epoch=train_epoch, initialize=initialize_banks,
                stop_after_epoch=self.stop_after_epoch)
        distributed.barrier()

    def _instance_loss(self, features: torch.Tensor, indices: torch.Tensor,
                       global_indices: torch.Tensor, bank: MomentumMemoryBank) -> torch.Tensor:
        """Eq. 6 for this rank's ``features`` ``[b, D]``; with 'batch' negatives, over the global batch.

        'bank' negatives are the whole bank on every rank. 'batch' negatives are the bank
        entries of the *global* batch ``global_indices`` ``[B]``, with this rank's positives
        at its slice's offset, as in the one-process run (alone, ``global_indices == indices``).
        """
        if self.instance_nce.negatives == "bank" or distributed.world_size() == 1:
            return self.instance_nce(features, indices, bank.entries)
        offset = distributed.rank() * len(indices)
        positions = torch.arange(offset, offset + len(indices), device=features.device)
        global_batch_entries = bank.entries[global_indices.to(bank.entries.device, dtype=torch.long)]
        # The global batch's entries as a small bank: 'bank' negatives over it are Eq. 6's sum j = 1..B.
        over_global_batch = InstanceNCE(self.instance_nce.temperature, negatives="bank",
                                        reduction=self.instance_nce.reduction)
        return over_global_batch(features, positions, global_batch_entries)

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
            **({"distributed": self._describe_distributed()} if self.world_size > 1 else {}),
        }

    def _describe_distributed(self) -> dict:
        return {"world_size": self.world_size, "global_batch": self.batch_size,
                "rank_batch": self.batch_size // self.world_size,
                "batchnorm": "statistics over the global batch (SyncBatchNorm on CUDA, "
                             "GlobalBatchNorm on Gloo)",
                "banks": "updated with the batch gathered from every rank; identical on all ranks",
                "augmentation": "each rank's random augmentations reseeded per (epoch, rank), so "
                                "ranks draw different views; the sampler order is rank 0's"}


def augmentation_seed(base_seed: int, epoch: int, rank: int, world: int) -> int:
    """The seed of rank ``rank``'s random augmentations in ``epoch`` when several ranks train.

    Ranks start from one seed, so without it rank r's k-th image would get the same random
    crop or affine as rank 0's k-th image; reseeding per (epoch, rank) decorrelates them, and
    a resumed run (which restores rank 0's random state on every rank) draws the same
    augmentations as an uninterrupted one.
    """
    return (base_seed + 1_000_003 * (epoch * world + rank + 1)) % 2**63


class _BothDomains(nn.Module):
    """``(x_A, x_B) -> (f(x_A), f(x_B))``: both domains' forward passes as one module call.

    DDP expects one forward per backward; the two domains still pass the encoder separately,
    so BatchNorm statistics stay per domain as in the one-process loop.
    """

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x_a), self.encoder(x_b)
