"""DANCE: domain adaptive neighbourhood clustering via entropy optimisation (Saito et al., NeurIPS 2020), label-free.

DANCE trains a prototype (cosine) classifier on labelled source data and adapts it to an
unlabelled target domain with two self-supervised terms: **neighbourhood clustering** — each
target feature's similarity distribution over the other target samples (memory bank) and the
source prototypes should have low entropy, so target samples cluster with neighbours or with a
class — and **entropy separation** — a target sample's entropy over the source classes is pushed
away from ρ = log(K)/2 (down: known class, up: unknown), ignoring samples within a margin m.
At test time a sample whose entropy exceeds ρ is unknown.

Adapted to label-free U²CDR (see ``_gallery_pseudo_labels``): neither domain has labels, so the
source cross-entropy uses **K-means cluster pseudo-labels of the gallery domain B's memory bank**
instead of source labels. B plays DANCE's labelled source (its pseudo-classes are the gallery
prototypes), the query domain A plays the target (neighbourhood clustering over A's memory bank
and B's prototypes; entropy separation), so the test rule asks of each query whether it sits
with a gallery prototype.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of the initial model; K ← ``num_clusters``;
       (P, y_B) ← spherical K-means(M_B, K); C ← P (prototypes of the gallery pseudo-classes).
    2. for each epoch (y_B refreshed from C's prototypes every ``recluster_every`` epochs),
       for each paired batch:
           L = w_I [INCE(z_A, M_A) + INCE(z_B, M_B)]          (representation learner)
               + CE(C(z_B), y_B)                               (source CE → pseudo-labels)
               + η · H(softmax([C(z_A), z_A M_Aᵀ/T, z_A z_Aᵀ/T]))  (Eq. 2; batch masked)
               + η · −max(|H(softmax(C(z_A))) − ρ|, m)         (Eq. 4)
           SGD step;  M ← β M + (1 − β) z
    3. retrieval features = normalised head output; private queries (open set):
           private ⇔ H(softmax(C(q))) > ρ   — the entropy over the gallery prototypes.

Readings (``VisionLearningGroup/DANCE``, ``train_dance.py``, ``utils/loss.py``, configs):
    * η = 0.05 for both terms, T = 0.05, m = 0.5, ρ = log(K)/2 (the configs' ``thr`` is
      log(|source classes|)/2), batch 36, lr 0.01, weight decay 5e-4.
    * The neighbourhood memory is A's momentum bank, shared with instance discrimination
      (β = ``bank_momentum``); DANCE's own bank replaces entries outright (momentum 0).
    * Instance discrimination (not in DANCE) keeps training the encoder that the pseudo-labels
      come from; ``instance_weight=0`` drops it.
    * The schedule is the harness's cosine one (DANCE: inverse decay, backbone at 0.1×).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from u2cdr.losses.entropy_separation import default_threshold, entropy_separation, softmax_entropy
from u2cdr.losses.neighbourhood_clustering import neighbourhood_clustering
from u2cdr.methods._bank_method import BankSession
from u2cdr.methods._gallery_pseudo_labels import GalleryPseudoLabelMethod, pseudo_label_arguments
from u2cdr.registry import METHODS


@METHODS.register_module(name="dance")
class DANCE(GalleryPseudoLabelMethod):
    """DANCE, label-free: neighbourhood clustering + entropy separation (Saito et al., NeurIPS 2020).

    Constructor defaults follow DANCE's released configs where they carry over (batch 36, lr
    0.01, SGD momentum 0.9, weight decay 5e-4, T 0.05, η 0.05, m 0.5, ρ = log(K)/2).

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
        num_clusters: K, the gallery's pseudo-class count: an int, 'elbow' or 'oracle' (flagged).
        elbow_k_max: largest K the Elbow search tries.
        kmeans_iterations: Lloyd iterations of the K-means and of each refresh.
        recluster_every: refresh the gallery pseudo-labels every this many epochs (0: never).
        classifier_temperature: T of the prototype classifier and of neighbourhood clustering.
        source_weight: weight of the cross-entropy on gallery pseudo-labels.
        neighbourhood_weight: η of neighbourhood clustering.
        separation_weight: η of entropy separation.
        entropy_threshold: ρ; None = log(K)/2.
        separation_margin: m.
        head_lr_scale: learning rate of the classifier relative to ``lr``.
        head_gradient_scale: fraction of the heads' gradient that reaches the encoder (1 = the
            paper; < 1 is flagged).
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "open-set domain adaptation"
    stage: ClassVar[str] = "dance"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 50,
                 batch_size: int = 36, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 instance_weight: float = 1.0, num_clusters: str | int = "elbow",
                 elbow_k_max: int | None = 30, kmeans_iterations: int = 20,
                 recluster_every: int = 1, classifier_temperature: float = 0.05,
                 source_weight: float = 1.0, neighbourhood_weight: float = 0.05,
                 separation_weight: float = 0.05, entropy_threshold: float | None = None,
                 separation_margin: float = 0.5, head_lr_scale: float = 1.0,
                 head_gradient_scale: float = 1.0, device: str = "cpu",
                 num_workers: int = 0) -> None:
        super().__init__(**pseudo_label_arguments(locals()))
        if neighbourhood_weight < 0 or separation_weight < 0 or separation_margin < 0:
            raise ValueError(f"neighbourhood_weight, separation_weight and separation_margin must "
                             f"be >= 0, got {neighbourhood_weight}, {separation_weight} and "
                             f"{separation_margin}")
        if entropy_threshold is not None and entropy_threshold <= 0:
            raise ValueError(f"entropy_threshold must be > 0 or None (log(K)/2), got "
                             f"{entropy_threshold}")
        self.neighbourhood_weight = neighbourhood_weight
        self.separation_weight = separation_weight
        self.entropy_threshold = entropy_threshold
        self.separation_margin = separation_margin

    @property
    def threshold(self) -> float:
        """ρ in force: the configured one, else log(K)/2 for the classifier's K."""
        if self.entropy_threshold is not None:
            return float(self.entropy_threshold)
        return default_threshold(self.num_classes)

    def method_weights(self) -> dict[str, float]:
        return {"L_NC_A": self.neighbourhood_weight, "L_ES_A": self.separation_weight}

    def method_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                     z_b: torch.Tensor, idx_b: torch.Tensor,
                     logits_b: torch.Tensor) -> dict[str, torch.Tensor]:
        logits_a = self.classifier(z_a)
        return {"L_NC_A": neighbourhood_clustering(z_a, idx_a, session.banks["A"].entries, logits_a,
                                                   self.classifier_temperature),
                "L_ES_A": entropy_separation(logits_a, self.threshold, self.separation_margin)}

    @torch.no_grad()
    def query_entropy(self, query_features: np.ndarray) -> np.ndarray:
        """``[N]`` entropy (nats) of each query's softmax over the gallery prototypes."""
        return softmax_entropy(self.classifier(self.query_tensor(query_features))).cpu().numpy()

    def detect_private(self, query_features: np.ndarray,
                       gallery_features: np.ndarray) -> np.ndarray:
        """DANCE's rule: private ⇔ entropy over the gallery prototypes > ρ."""
        return self.query_entropy(query_features) > self.threshold

    def describe(self) -> dict:
        info = super().describe()
        info["entropy_threshold"] = self.threshold if self.classifier is not None else None
        info["gap_decisions"].update({
            "roles": "DANCE source = gallery B (its pseudo-classes are the classifier's "
                     "prototypes), target = query domain A (neighbourhood clustering over A's "
                     "bank and B's prototypes; entropy separation)",
            "neighbourhood_memory": "A's momentum bank shared with instance discrimination; the "
                                    "batch's own entries masked, batch neighbours added (code)",
            "private_detection": ("entropy of softmax over the gallery prototypes > rho = "
                                  + ("log(K)/2" if self.entropy_threshold is None
                                     else f"{self.entropy_threshold}")
                                  + "; gallery features unused (the gallery enters through the "
                                    "prototypes)"),
        })
        return info
