"""DN²A: strong augmentation plus in-domain and trusted cross-domain nearest-neighbour positives.

Liu, Wang, Chen, Dai, Li, Zou, Xiong, "Promoting semantic connectivity: Dual nearest neighbors
contrastive learning for unsupervised domain generalization", CVPR 2023. The paper's argument:
contrastive learning across domains fails because augmentations connect images of one domain
(shared style) more than images of one class; strong augmentation weakens the first kind of
connectivity and nearest-neighbour positives, searched inside the domain and across domains,
build the second. UEM (App. B.2) runs it as a UDG baseline without its classifier, ranking with
Euclidean distance (``distance = 'euclidean'``); open-set cells use the generic rule.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of every image under the initial model.
    2. for each epoch, for each paired batch (B images of A, B of B, one strongly augmented view):
           z_A, z_B = f_θ(x_A), f_θ(x_B)
           for every anchor i of domain a (b = the other domain), searched on bank entries
           with Euclidean distance:
               in-domain neighbours  N_i = the k nearest entries of M_a to m_i (i excluded)
               cross-domain neighbour c_i = the nearest entry of M_b to m_i (both banks
                                            centred on their domain mean)
               trusted ⇔ the nearest entry of M_a to c_i is i or lies in N_i   (dual check)
           positives P_i = {m_i} ∪ N_i ∪ {c_i if trusted}
           candidates C_i = M_A ∪ M_B ('both_domains') or M_a ∪ P_i ('own_domain')
           L = NeighbourNCE(z_A, C, P_A) + NeighbourNCE(z_B, C, P_B)
           SGD step (lr cosine-annealed per step);  M ← β M + (1 − β) z
    3. retrieval features = normalised head output of the eval view, ranked by Euclidean distance.

Readings taken (no official code; recorded in ``describe()``):
    * Support set: the paper searches neighbours in a support set of recent embeddings; here
      each domain's momentum memory bank (UEM Eq. 5) is the support set, so the search covers
      the whole domain and every entry has a known domain.
    * "Dual" nearest neighbours: a cross-domain neighbour is trusted when the way back — its own
      nearest neighbour in the anchor's domain — lands on the anchor or one of the anchor's
      in-domain neighbours (a mutual-neighbour test loosened by the in-domain neighbourhood).
    * Cross-domain search on entries minus their domain's mean (``centre_cross``): at random
      init on digits, raw search sends all 5,000 MNIST anchors to 9 UCI entries (hubs on the
      domain border, 9 % same class); centred, to 747 entries (16 % same class).
    * Loss: one multi-positive InfoNCE (SupCon's averaged form) whose positives are the
      anchor's own bank entry, its in-domain neighbours and its trusted cross-domain neighbour;
      no separate loss weights. Negatives (``negatives``): 'both_domains' (the default) reads
      the paper's plain contrastive setting, whose negatives come from every training domain;
      'own_domain' keeps only the anchor's domain (plus
      its cross-domain positive), so the loss never pushes the domains apart — on digits,
      where the domain gap is large, only this variant clearly beats the random floor.
    * Strong augmentation: the dataset's train transform, then Gaussian blur and random erasing
      on the tensor (both work for any channel count and blur removes texture/stroke style,
      the domain cue); the paper's exact strong recipe is for photos.
    * Neighbour positives start at ``neighbour_start_epoch`` (before it: instance positives only).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch
from torchvision import transforms as T

from u2cdr.data.pair import DomainData, DomainPair
from u2cdr.losses.neighbour_nce import NeighbourNCE
from u2cdr.methods._trainer import (GeneratorState, LossMeter, check_finite, cosine_lr, make_sgd,
                                    progress_bar, resolve_device, run_epochs, set_lr)
from u2cdr.methods.base import Method
from u2cdr.models.encoder import EMBEDDINGS, Encoder, describe_encoder, embed_loader
from u2cdr.models.memory_bank import MomentumMemoryBank
from u2cdr.registry import BACKBONES, METHODS, build


CROSS_NEIGHBOURS = ("dual", "all", "off")
NEGATIVE_SETS = ("both_domains", "own_domain")


def check_probabilities(**probabilities: float) -> None:
    """Raise a ``ValueError`` naming the first value outside [0, 1]."""
    for name, value in probabilities.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")


class StrongAugmentation:
    """``base`` (the dataset's train transform), then tensor-level Gaussian blur and erasing.

    The blur kernel is ~10 % of the image side (odd, at least 3), as in SimCLR's blur. On a
    feature vector (frozen-feature mode) blur has no meaning; erasing becomes zeroing a random
    ``erase_scale`` share of the dimensions with probability ``erase_p``.
    """

    def __init__(self, base: Callable[[object], torch.Tensor], blur_p: float = 0.5,
                 blur_sigma: tuple[float, float] = (0.1, 2.0), erase_p: float = 0.25,
                 erase_scale: tuple[float, float] = (0.02, 0.15)) -> None:
        check_probabilities(blur_p=blur_p, erase_p=erase_p)
        self.base = base
        self.blur_p = blur_p
        self.blur_sigma = tuple(blur_sigma)
        self.erase = T.RandomErasing(p=erase_p, scale=tuple(erase_scale), value=0)

    def __call__(self, image: object) -> torch.Tensor:
        tensor = self.base(image)
        if tensor.dim() == 1:
            return self._erase_dimensions(tensor)
        if self.blur_p > 0 and float(torch.rand(())) < self.blur_p:
            kernel = max(3, int(0.1 * min(tensor.shape[-2:])) // 2 * 2 + 1)
            tensor = T.GaussianBlur(kernel, sigma=self.blur_sigma)(tensor)
        return self.erase(tensor)

    def _erase_dimensions(self, vector: torch.Tensor) -> torch.Tensor:
        if float(torch.rand(())) >= self.erase.p:
            return vector
        low, high = self.erase.scale
        share = low + (high - low) * float(torch.rand(()))
        return vector * (torch.rand_like(vector) >= share).to(vector.dtype)


@dataclass
class DualNeighbours:
    """Neighbours of a batch of anchors: ``in_domain [B, k]`` and ``cross [B]`` bank indices,
    ``trusted [B]`` whether the cross-domain neighbour passed the dual check."""

    in_domain: torch.Tensor
    cross: torch.Tensor
    trusted: torch.Tensor


@torch.no_grad()
def dual_nearest_neighbours(anchor_indices: torch.Tensor, own_bank: torch.Tensor,
                            other_bank: torch.Tensor, num_in_domain: int = 1,
                            centre: bool = False) -> DualNeighbours:
    """Euclidean in-domain and cross-domain neighbours of the entries ``anchor_indices`` of
    ``own_bank`` ``[N_a, D]``; ``other_bank`` ``[N_b, D]`` is the other domain.

    A cross-domain neighbour ``c`` is trusted when ``own_bank``'s nearest entry to ``c`` is the
    anchor itself or one of its ``num_in_domain`` in-domain neighbours. With ``centre`` both
    cross-domain searches run on entries minus their own domain's mean (the mean-shift
    translation of UEM Eq. 8), so a constant domain offset does not make a few entries near
    the other domain everyone's neighbour.
    """
    if not 1 <= num_in_domain < len(own_bank):
        raise ValueError(f"num_in_domain must lie in 1..{len(own_bank) - 1} (the domain has "
                         f"{len(own_bank)} images), got {num_in_domain}")
    anchor_indices = anchor_indices.to(own_bank.device, dtype=torch.long)
    anchors = own_bank[anchor_indices]
    own_distances = torch.cdist(anchors, own_bank)
    own_distances[torch.arange(len(anchors), device=own_bank.device), anchor_indices] = float("inf")
    in_domain = own_distances.topk(num_in_domain, dim=1, largest=False).indices
    if centre:
        own_bank, other_bank = own_bank - own_bank.mean(dim=0), other_bank - other_bank.mean(dim=0)
        anchors = own_bank[anchor_indices]
    cross = torch.cdist(anchors, other_bank).argmin(dim=1)
    way_back = torch.cdist(other_bank[cross], own_bank).argmin(dim=1)
    trusted = (way_back == anchor_indices) | (way_back.unsqueeze(1) == in_domain).any(dim=1)
    return DualNeighbours(in_domain=in_domain, cross=cross, trusted=trusted)


@METHODS.register_module(name="dn2a")
class DN2A(Method):
    """DN²A dual-nearest-neighbour contrast with strong augmentation (Liu et al., CVPR 2023).

    The defaults are for training from random initialisation (NPID-like lr 0.03, weight decay
    5e-4, τ 0.07); ``benchmarks/_base_/methods/dn2a.py`` sets UEM's MoCo-v2-initialised schedule.

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
        bank_momentum: β of the memory banks (the support sets).
        num_in_domain: k, in-domain neighbours per anchor.
        cross_neighbours: 'dual' (trusted ones only), 'all' (every cross-domain nearest
            neighbour) or 'off' (in-domain neighbours only).
        centre_cross: search cross-domain neighbours on domain-mean-centred entries.
        negatives: 'both_domains' (every entry of both banks) or 'own_domain' (the anchor's
            domain's bank; of the other bank only the anchor's cross-domain positive).
        neighbour_start_epoch: first epoch (0-based) with neighbour positives.
        blur_p: probability of the strong Gaussian blur.
        erase_p: probability of the strong random erasing.
        embedding: retrieval features, 'head' or 'backbone' (L2-normalised either way).
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "UDG"
    distance: ClassVar[str] = "euclidean"
    trains: ClassVar[bool] = True
    stage: ClassVar[str] = "dn2a"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 num_in_domain: int = 1, cross_neighbours: str = "dual", centre_cross: bool = True,
                 negatives: str = "both_domains",
                 neighbour_start_epoch: int = 0, blur_p: float = 0.5, erase_p: float = 0.25,
                 embedding: str = "head", device: str = "cpu", num_workers: int = 0) -> None:
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding={embedding!r} is unknown; valid: {', '.join(EMBEDDINGS)}")
        if cross_neighbours not in CROSS_NEIGHBOURS:
            raise ValueError(f"cross_neighbours={cross_neighbours!r} is unknown; valid: "
                             f"{', '.join(CROSS_NEIGHBOURS)}")
        if negatives not in NEGATIVE_SETS:
            raise ValueError(f"negatives={negatives!r} is unknown; valid: {', '.join(NEGATIVE_SETS)}")
        if epochs < 1 or batch_size < 1 or num_in_domain < 1 or neighbour_start_epoch < 0:
            raise ValueError(f"epochs, batch_size and num_in_domain must be >= 1 and "
                             f"neighbour_start_epoch >= 0, got {epochs}, {batch_size}, "
                             f"{num_in_domain} and {neighbour_start_epoch}")
        self.device = resolve_device(device)
        self.backbone_cfg = dict(backbone)
        self.encoder = Encoder(build(BACKBONES, backbone, path="method.backbone"), head=head,
                               low_dim=low_dim, normalize=True).to(self.device)
        self.neighbour_nce = NeighbourNCE(temperature=temperature)
        check_probabilities(blur_p=blur_p, erase_p=erase_p)
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.bank_momentum = bank_momentum
        self.num_in_domain = num_in_domain
        self.cross_neighbours = cross_neighbours
        self.centre_cross = centre_cross
        self.negatives = negatives
        self.neighbour_start_epoch = neighbour_start_epoch
        self.blur_p = blur_p
        self.erase_p = erase_p
        self.embedding = embedding
        self.num_workers = num_workers
        self.banks: dict[str, MomentumMemoryBank] = {}
        self.history: list[dict[str, float]] = []
        self.stop_after_epoch: int | None = None

    def build_banks(self, pair: DomainPair) -> None:
        """Empty support sets ``banks['A']``, ``banks['B']`` sized to the two domains."""
        self.banks = {domain: MomentumMemoryBank(len(data), self.encoder.out_dim, self.bank_momentum,
                                                 renormalize=True).to(self.device)
                      for domain, data in (("A", pair.query), ("B", pair.gallery))}

    def initialize_banks(self, pair: DomainPair) -> None:
        """Eq. 5 initialisation: every entry = the initial model's eval-view head feature."""
        for domain, data in (("A", pair.query), ("B", pair.gallery)):
            self.banks[domain].initialize(torch.from_numpy(
                embed_loader(self.encoder, self._eval_loader(data), self.device)))

    def positive_mask(self, domain: str, indices: torch.Tensor,
                      use_neighbours: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, N_A + N_B]`` positives over the concatenated banks for anchors ``indices`` of
        ``domain``, and the fraction of anchors with a cross-domain positive."""
        other = "B" if domain == "A" else "A"
        offsets = {"A": 0, "B": len(self.banks["A"])}
        rows = torch.arange(len(indices), device=self.device)
        indices = indices.to(self.device, dtype=torch.long)
        mask = torch.zeros(len(indices), offsets["B"] + len(self.banks["B"]), dtype=torch.bool,
                           device=self.device)
        mask[rows, offsets[domain] + indices] = True
        if not use_neighbours:
            return mask, mask.new_zeros(()).float()
        found = dual_nearest_neighbours(indices, self.banks[domain].entries,
                                        self.banks[other].entries, self.num_in_domain,
                                        centre=self.centre_cross)
        mask[rows.unsqueeze(1), offsets[domain] + found.in_domain] = True
        if self.cross_neighbours == "off":
            return mask, mask.new_zeros(()).float()
        keep = found.trusted if self.cross_neighbours == "dual" else torch.ones_like(found.trusted)
        mask[rows[keep], offsets[other] + found.cross[keep]] = True
        return mask, keep.float().mean()

    def candidate_mask(self, domain: str, positive_mask: torch.Tensor) -> torch.Tensor | None:
        """Which bank entries each anchor is contrasted with (None: all of both banks)."""
        if self.negatives == "both_domains":
            return None
        own = torch.zeros_like(positive_mask)
        own_columns = slice(0, len(self.banks["A"])) if domain == "A" else slice(len(self.banks["A"]), None)
        own[:, own_columns] = True
        return own | positive_mask

    def loss_terms(self, x_a: torch.Tensor, idx_a: torch.Tensor, x_b: torch.Tensor,
                   idx_b: torch.Tensor, use_neighbours: bool = True
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(loss terms, anchor features per domain, cross-positive rates)`` of one paired batch."""
        candidates = torch.cat([self.banks["A"].entries, self.banks["B"].entries])
        terms, features, rates = {}, {}, {}
        for domain, images, indices in (("A", x_a, idx_a), ("B", x_b, idx_b)):
            features[domain] = self.encoder(images.to(self.device, non_blocking=True))
            mask, rates[f"cross_positive_rate_{domain}"] = self.positive_mask(domain, indices,
                                                                              use_neighbours)
            terms[f"L_DN2A_{domain}"] = self.neighbour_nce(features[domain], candidates, mask,
                                                           self.candidate_mask(domain, mask))
        return terms, features, rates

    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        self.build_banks(pair)
        strong_pair = replace(
            pair, query=replace(pair.query, train_transform=self._strong(pair.query.train_transform)),
            gallery=replace(pair.gallery, train_transform=self._strong(pair.gallery.train_transform)))
        optimizer = make_sgd(self.encoder.parameters(), self.lr, self.momentum, self.weight_decay)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        steps_per_epoch = pair.steps_per_epoch(self.batch_size)

        def train_epoch(epoch: int) -> dict[str, float]:
            self.encoder.train()
            meter = LossMeter()
            batches = strong_pair.paired_batches(self.batch_size, generator, num_workers=self.num_workers)
            for step, batch in enumerate(progress_bar(batches, total=steps_per_epoch,
                                                      desc=f"dn2a {epoch + 1}/{self.epochs}")):
                set_lr(optimizer, cosine_lr(self.lr, epoch * steps_per_epoch + step,
                                            self.epochs * steps_per_epoch))
                meter.add(self._train_step(batch, optimizer, epoch, step))
            return meter.means()

        self.history = run_epochs(
            stage=self.stage, epochs=self.epochs, work_dir=work_dir,
            stateful={"encoder": self.encoder, "optimizer": optimizer, "bank_A": self.banks["A"],
                      "bank_B": self.banks["B"], "sampler": GeneratorState(generator)},
            train_epoch=train_epoch, initialize=lambda: self.initialize_banks(pair),
            stop_after_epoch=self.stop_after_epoch)

    def _train_step(self, batch: tuple[torch.Tensor, ...], optimizer: torch.optim.Optimizer,
                    epoch: int, step: int) -> dict[str, torch.Tensor]:
        """One SGD step and bank update; returns the logged values."""
        x_a, idx_a, x_b, idx_b = batch
        terms, features, rates = self.loss_terms(x_a, idx_a, x_b, idx_b,
                                                 use_neighbours=epoch >= self.neighbour_start_epoch)
        check_finite(terms, epoch + 1, step + 1)
        loss = terms["L_DN2A_A"] + terms["L_DN2A_B"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.banks["A"].update(idx_a, features["A"])
        self.banks["B"].update(idx_b, features["B"])
        return {"loss": loss, **terms, **rates}

    def _strong(self, base: Callable[[object], torch.Tensor]) -> StrongAugmentation:
        return StrongAugmentation(base, blur_p=self.blur_p, erase_p=self.erase_p)

    def _eval_loader(self, domain: DomainData) -> torch.utils.data.DataLoader:
        return domain.eval_loader(batch_size=max(self.batch_size, 256), num_workers=self.num_workers)

    def embed(self, domain: DomainData) -> np.ndarray:
        return embed_loader(self.encoder.embedding_module(self.embedding), self._eval_loader(domain),
                            self.device, normalize=True)

    def describe(self) -> dict:
        return {
            **describe_encoder(self.encoder, self.backbone_cfg, self.embedding),
            "distance": self.distance,
            "gap_decisions": {
                "support_set": "each domain's momentum memory bank (whole domain, β "
                               f"{self.bank_momentum}) instead of a FIFO queue of recent embeddings",
                "neighbour_search": f"Euclidean on bank entries; {self.num_in_domain} in-domain "
                                    "neighbour(s), 1 cross-domain neighbour"
                                    + (", cross-domain search on domain-mean-centred entries"
                                       if self.centre_cross else ""),
                "cross_neighbours": f"{self.cross_neighbours} ('dual' = trusted when its nearest "
                                    "entry back in the anchor's domain is the anchor or one of "
                                    "its in-domain neighbours)",
                "loss": "one multi-positive InfoNCE (positives averaged outside the log); "
                        "positives = own entry + neighbours",
                "negatives": f"{self.negatives} ('both_domains' = every entry of both banks, "
                             "'own_domain' = the anchor's domain's bank plus its cross-domain "
                             "positive)",
                "strong_augmentation": f"train transform, then Gaussian blur (p={self.blur_p}, "
                                       f"σ∈[0.1, 2]) and random erasing (p={self.erase_p})",
                "neighbour_start_epoch": self.neighbour_start_epoch,
                "classifier": "dropped (UEM App. B.2: retrieval needs no classifier)",
                "lr_schedule": "cosine to zero, per step",
            },
            "final_losses": self.history[-1] if self.history else None,
        }
