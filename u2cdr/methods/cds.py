"""CDS: cross-domain self-supervised pre-training (Kim, Saito, Oh, Plummer, Sclaroff, Saenko, ICCV 2021).

CDS is per-domain instance discrimination (InstDisc: one memory bank per domain, so the domains
are never contrasted against each other) plus *cross-domain instance-to-instance matching*:
each feature's softmax similarity over the **other** domain's memory bank should have low
entropy, i.e. every image should match a few images of the other domain closely. UEM runs its
pre-training stage as a baseline; the second stage (few-shot fine-tuning with labels) is not
part of U²CDR and is dropped.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of every image under the initial model.
    2. for each epoch, for each paired batch (B images of A, B of B, one augmented view each):
           z_A, z_B = f_θ(x_A), f_θ(x_B)
           L = INCE(z_A, M_A) + INCE(z_B, M_B)                        (in-domain ID)
             + λ [H(softmax(z_A M_Bᵀ/τ)) + H(softmax(z_B M_Aᵀ/τ))]     (cross-domain matching)
           SGD step;  M ← β M + (1 − β) z
    3. retrieval features = normalised head output of the eval view.

Readings (where paper and code differ, or neither says):
    * ``top_k``: the paper's entropy runs over the whole other bank; the released code
      (``VisionLearningGroup/CDS``, ``custom_function/selfsup.py``) keeps the top
      ``n_neighbor = 700`` similarities first. Constructor default None = the paper; the
      paper-scale config sets 700 (the code).
    * The code averages the two ID terms (``(source + target) / 2``) and sums the two
      entropies; here every term has weight 1 except the entropies (λ), i.e. the ID terms are
      twice the code's — equivalent to a larger ID learning rate; say so when comparing.
    * The code's extra ``temp2`` factor on the top-k logits is 1 by default and not exposed.
    * Banks: the code's ``LinearAverage`` (momentum ``nce_m = 0.5``, renormalised); same here.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from u2cdr.losses.cross_domain_entropy import CrossDomainEntropy
from u2cdr.methods._bank_method import BankMethod, BankSession, instdisc_arguments
from u2cdr.registry import METHODS


@METHODS.register_module(name="cds")
class CDS(BankMethod):
    """CDS: in-domain instance discrimination + cross-domain entropy matching (Kim et al., ICCV 2021).

    Constructor defaults are CDS's released code (``CDS_pretraining.py``): lr 0.003, τ 0.1
    (``nce_t``), bank momentum 0.5 (``nce_m``), 512-d linear head (``low_dim``), weight decay
    5e-4, batch 16 per domain (the code's ``batch_size``), λ 1 (``lambda_value``), 7 epochs.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none'); CDS puts a linear layer on the
            pooled ResNet features.
        low_dim: projection width.
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step.
        lr: initial learning rate, cosine-annealed to zero.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of both the instance discrimination and the cross-domain softmax (the
            code uses ``nce_t`` for both).
        bank_momentum: β of the memory-bank update.
        renormalize_bank: L2-normalise bank entries after each update.
        negatives: instance-discrimination negatives, 'bank' (NPID, as the code) or 'batch'.
        cross_domain_weight: λ on the two cross-domain entropies.
        top_k: similarities kept per row before the entropy's softmax (None = whole bank).
        embedding: retrieval features, 'head' or 'backbone'.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "CDRL"
    stage: ClassVar[str] = "cds"

    def __init__(self, backbone: dict, head: str = "linear", low_dim: int = 512, epochs: int = 7,
                 batch_size: int = 16, lr: float = 0.003, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.1, bank_momentum: float = 0.5,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 cross_domain_weight: float = 1.0, top_k: int | None = None,
                 embedding: str = "head", device: str = "cpu", num_workers: int = 0) -> None:
        super().__init__(**instdisc_arguments(locals()))
        if cross_domain_weight < 0:
            raise ValueError(f"cross_domain_weight must be >= 0, got {cross_domain_weight}")
        self.cross_domain_weight = cross_domain_weight
        self.cross_domain_entropy = CrossDomainEntropy(temperature=temperature, top_k=top_k)

    @property
    def loss_weights(self) -> dict[str, float]:
        return {**super().loss_weights, "L_CDM_A": self.cross_domain_weight,
                "L_CDM_B": self.cross_domain_weight}

    def extra_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                    z_b: torch.Tensor, idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-domain matching: A's features against M_B and B's against M_A."""
        return {"L_CDM_A": self.cross_domain_entropy(z_a, session.banks["B"].entries),
                "L_CDM_B": self.cross_domain_entropy(z_b, session.banks["A"].entries)}

    def describe(self) -> dict:
        info = super().describe()
        info["gap_decisions"].update({
            "cross_domain_anchors": "the other domain's whole memory bank" if
            self.cross_domain_entropy.top_k is None else
            f"the top {self.cross_domain_entropy.top_k} entries of the other domain's bank "
            "(released code's n_neighbor)",
            "id_weight": "1 per domain (the code averages the two ID terms, i.e. 0.5 each)",
            "dropped": "stage 2 (few-shot fine-tuning with source labels)",
        })
        return info
