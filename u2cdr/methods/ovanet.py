"""OVANet: one-vs-all networks for open-set domain adaptation (Saito & Saenko, ICCV 2021), label-free.

OVANet learns a closed-set classifier C₁ over the source classes and, per class, a binary
"one-vs-all" head (C₂, 2K outputs read as ``[B, 2, K]``): head k says whether a sample is of
class k. Source samples train C₁ by cross-entropy and C₂ by the OVA loss with hard-negative
mining; target samples train C₂ by open-set entropy minimisation, which makes every head decide
confidently. A target sample is unknown when the OVA head of its top C₁ class rejects it.

Adapted to label-free U²CDR (see ``_gallery_pseudo_labels``): neither domain has labels, so
every source-classification term — C₁'s cross-entropy and the OVA loss — uses **K-means cluster
pseudo-labels of the gallery domain B's memory bank** instead of source labels. The reading of
the roles: in the open scenario "unknown" means "no counterpart in the gallery", so the searched
label space is B's: C₁ and C₂ are trained on B's pseudo-classes (B plays OVANet's source), and
the OVA rule is applied to queries from A (A plays OVANet's target, and carries the open-set
entropy term).

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of the initial model; K ← ``num_clusters``;
       (P, y_B) ← spherical K-means(M_B, K); C₁ ← P.
    2. for each epoch (y_B refreshed from C₁'s prototypes every ``recluster_every`` epochs),
       for each paired batch:
           L = w_I [INCE(z_A, M_A) + INCE(z_B, M_B)]                 (representation learner)
               + CE(C₁(z_B), y_B)                                     (source CE → pseudo-labels)
               + w_ova · ½ [ −log p(1 | y_B) + max_{k≠y_B} −log p(0 | k) ]   on C₂(z_B)  (Eq. 1)
               + w_ent · mean_k H(p(· | k))                          on C₂(z_A)  (Eq. 2)
           SGD step;  M ← β M + (1 − β) z
    3. retrieval features = normalised head output; private queries (open set):
           ŷ = argmax C₁(q);  private ⇔ p(1 | ŷ) from C₂(q) < ½      (OVANet's test rule)

Readings (``VisionLearningGroup/OVANet``, ``train.py``, ``utils/loss.py``, ``eval.py``):
    * Weights: OVA loss ½ (the code's ``0.5 * (pos + neg)``), open-set entropy 0.1 (``--multi``).
    * C₁ and C₂ are prototype (cosine) classifiers with T = 0.05 on the normalised embedding. The
      code's C₂ renormalises its weights every step but reads raw 2048-d features whose norm sets
      the logit scale; on unit features 1/T plays that role. C₁ in the code is a plain bias-free
      linear layer; here it is the same cosine classifier, so its prototypes can start at the
      K-means centroids (pseudo-class k = prototype k).
    * Instance discrimination (not in OVANet) keeps training the encoder that the pseudo-labels
      come from; ``instance_weight=0`` drops it.
    * OVANet's inverse-decay schedule and 0.1× backbone rate become the harness's cosine schedule;
      ``head_lr_scale`` sets the heads' rate relative to the encoder's.
    * The rule reads only the query features and the trained heads: the gallery enters through the
      pseudo-classes C₁ and C₂ were trained on, not through ``gallery_features``.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from u2cdr.losses.one_vs_all import known_probability, one_vs_all_loss, open_set_entropy
from u2cdr.methods._bank_method import BankSession
from u2cdr.methods._gallery_pseudo_labels import GalleryPseudoLabelMethod, pseudo_label_arguments
from u2cdr.models.prototype_classifier import PrototypeClassifier
from u2cdr.registry import METHODS


@METHODS.register_module(name="ovanet")
class OVANet(GalleryPseudoLabelMethod):
    """OVANet, label-free: closed-set + one-vs-all heads on gallery pseudo-classes (Saito & Saenko, ICCV 2021).

    Constructor defaults follow OVANet's released configs where they carry over (batch 36, lr
    0.01, SGD momentum 0.9, weight decay 5e-4, T 0.05, OVA weight ½, entropy weight 0.1).

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none').
        low_dim: projection width.
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step.
        lr: initial learning rate, cosine-annealed to zero.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of instance discrimination.
        bank_momentum: β of the memory-bank update.
        renormalize_bank: L2-normalise bank entries after each update.
        negatives: instance-discrimination negatives, 'bank' or 'batch'.
        instance_weight: weight of per-domain instance discrimination (0: none).
        num_clusters: K, the gallery's pseudo-class count: an int, 'elbow' (Kneedle on the
            initial gallery features) or 'oracle' (the gallery's class count; flagged).
        elbow_k_max: largest K the Elbow search tries.
        kmeans_iterations: Lloyd iterations of the K-means and of each refresh.
        recluster_every: refresh the gallery pseudo-labels every this many epochs (0: never).
        classifier_temperature: T of C₁ and C₂.
        source_weight: weight of C₁'s cross-entropy on gallery pseudo-labels.
        ova_weight: weight of the OVA loss (½ in OVANet).
        open_entropy_weight: weight of the open-set entropy on queries (0.1 in OVANet).
        known_threshold: a query is private when its top class's positive probability is below
            this (½ in OVANet).
        head_lr_scale: learning rate of C₁ and C₂ relative to ``lr``.
        head_gradient_scale: fraction of the heads' gradient that reaches the encoder (1 = the
            paper; < 1 is flagged).
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "open-set domain adaptation"
    stage: ClassVar[str] = "ovanet"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 50,
                 batch_size: int = 36, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 instance_weight: float = 1.0, num_clusters: str | int = "elbow",
                 elbow_k_max: int | None = 30, kmeans_iterations: int = 20,
                 recluster_every: int = 1, classifier_temperature: float = 0.05,
                 source_weight: float = 1.0, ova_weight: float = 0.5,
                 open_entropy_weight: float = 0.1, known_threshold: float = 0.5,
                 head_lr_scale: float = 1.0,
                 head_gradient_scale: float = 1.0, device: str = "cpu", num_workers: int = 0) -> None:
        super().__init__(**pseudo_label_arguments(locals()))
        if ova_weight < 0 or open_entropy_weight < 0:
            raise ValueError(f"ova_weight and open_entropy_weight must be >= 0, got {ova_weight} "
                             f"and {open_entropy_weight}")
        if not 0 < known_threshold < 1:
            raise ValueError(f"known_threshold must lie in (0, 1), got {known_threshold}")
        self.ova_weight = ova_weight
        self.open_entropy_weight = open_entropy_weight
        self.known_threshold = known_threshold
        self.open_heads: PrototypeClassifier | None = None

    def build_method_heads(self, num_classes: int) -> None:
        """C₂: 2K prototypes, read as ``[B, 2, K]`` (row 0 = negative, row 1 = positive)."""
        self.open_heads = PrototypeClassifier(self.encoder.out_dim, 2 * num_classes,
                                              self.classifier_temperature).to(self.device)

    def head_modules(self) -> dict[str, torch.nn.Module]:
        return {**super().head_modules(), "open_heads": self.open_heads}

    def open_logits(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, 2, K]`` logits of the K one-vs-all heads."""
        return self.open_heads(features).view(len(features), 2, self.num_classes)

    def method_weights(self) -> dict[str, float]:
        return {"L_OVA_B": self.ova_weight, "L_OEM_A": self.open_entropy_weight}

    def method_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                     z_b: torch.Tensor, idx_b: torch.Tensor,
                     logits_b: torch.Tensor) -> dict[str, torch.Tensor]:
        positive, negative = one_vs_all_loss(self.open_logits(z_b), self.gallery_targets(idx_b))
        return {"L_OVA_B": positive + negative, "L_OEM_A": open_set_entropy(self.open_logits(z_a))}

    @torch.no_grad()
    def known_scores(self, query_features: np.ndarray) -> np.ndarray:
        """``[N]`` positive probability of each query's top-class OVA head."""
        query = self.query_tensor(query_features)
        return known_probability(self.classifier(query), self.open_logits(query)).cpu().numpy()

    def detect_private(self, query_features: np.ndarray,
                       gallery_features: np.ndarray) -> np.ndarray:
        """OVANet's rule: private ⇔ the top C₁ class's OVA positive probability < ``known_threshold``."""
        return self.known_scores(query_features) < self.known_threshold

    def describe(self) -> dict:
        info = super().describe()
        info["gap_decisions"].update({
            "roles": "OVANet source = gallery B (its pseudo-classes train C1 and C2), target = "
                     "query domain A (open-set entropy; judged known/unknown)",
            "ova_loss": f"weight {self.ova_weight} on (positive + hardest negative); code: "
                        "0.5 * (pos + neg)",
            "private_detection": (f"top C1 class's OVA positive probability < "
                                  f"{self.known_threshold}; gallery features unused (the gallery "
                                  "enters through the pseudo-classes)"),
        })
        return info
