"""UniOT: unified optimal transport for universal domain adaptation (Chang et al., NeurIPS 2022), label-free.

UniOT handles common and private classes with two transport problems:

* **common class detection (CCD)**: unbalanced OT (KL-relaxed marginals,
  ``losses/unbalanced_sinkhorn.py``) between target features and the source prototypes of a
  prototype classifier. A target sample of a common class sends much of its mass to one
  prototype; a private one keeps its mass. With the plan normalised to total mass 1, a sample
  is common when its largest entry exceeds the mean row mass 1/N (the adaptive threshold); its
  arg-max is its pseudo-label, and confident common samples train the classifier. Prototypes
  that receive less than 1/K (source-private classes) give no pseudo-labels. The prototypes'
  column marginal β is re-estimated by an EMA of the plan's column sums. Adaptive filling adds
  copies of confident rows or synthetic private rows so that about half the rows are common
  (a batch with no common sample would otherwise be split anyway).
* **private class discovery (PCD)**: target features are clustered on target prototypes by
  balanced-OT self-labelling with neighbour swapping (``losses/private_class_discovery.py``).

Adapted to label-free U²CDR (see ``_gallery_pseudo_labels``): neither domain has labels, so the
source cross-entropy uses **K-means cluster pseudo-labels of the gallery domain B's memory bank**
instead of source labels. B plays UniOT's source (its pseudo-classes are the gallery
prototypes), the query domain A plays the target: CCD transports queries onto gallery
prototypes, PCD discovers clusters on the query side, and the test rule is CCD on all queries.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of the initial model; K ← ``num_clusters``;
       (P, y_B) ← spherical K-means(M_B, K); C ← P; β ← uniform(K); cluster head H (K_t).
    2. for each epoch (y_B refreshed from C's prototypes every ``recluster_every`` epochs),
       for each paired batch:
           L = w_I [INCE(z_A, M_A) + INCE(z_B, M_B)] + CE(C(z_B), y_B)  (source CE → pseudo-labels)
               + λ · PCD(H(z_A), H(neighbour(z_A)), H(K_t memory rows of M_A))
               + λ · CE(C(z_A)[common], ŷ[common])        (CCD, from epoch ``ccd_start_epoch``)
           where CCD runs on [F random rows of M_A; z_A] (+ adaptive filling) against C's
           prototypes with row mass 1/N and column mass β;  β ← μ β + (1 − μ) colsum(Q̄).
           SGD step;  M ← β_bank M + (1 − β_bank) z
    3. retrieval features = normalised head output; private queries (open set): CCD on all
       queries against the gallery prototypes (adaptive filling, learnt β) →
           private ⇔ max_j Q̄_ij ≤ 1/N_rows   (the query's best transported mass below the
           adaptive threshold).

Readings (the released ``utils/lib.py``: ``ubot_CCD``, ``adaptive_filling``; ``main.py``,
``eval.py``):
    * Unbalanced OT with ε = 0.01 and marginal relaxation 0.5 (``reg``, ``reg_m``), stopping
      tolerance 1e-4 in training and 1e-6 at test, at most 1000 iterations (POT's default);
      γ = 0.7 (``eval``'s default) for adaptive filling; PCD Sinkhorn ε 0.05, 3 iterations,
      K_t fill rows. μ = 0.7, λ = 0.1, T = 0.1, memory fill 2000 and K_t = 50 are this
      harness's reading of the paper's settings (the per-dataset config files were not read).
    * UniOT's memory queue (recent target features) is A's momentum memory bank, which holds
      every query image; the CCD and PCD fills sample it uniformly without replacement.
    * CCD starts after UniOT's first 100 steps; here after ``ccd_start_epoch`` epochs.
    * Instance discrimination (not in UniOT) keeps training the encoder that the pseudo-labels
      come from; ``instance_weight=0`` drops it. The schedule is the harness's cosine one.
    * At test time the random choices of adaptive filling use a generator seeded with the
      cell's seed (``torch.initial_seed()``), so detection is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from u2cdr.losses.private_class_discovery import private_class_discovery
from u2cdr.losses.unbalanced_sinkhorn import unbalanced_sinkhorn
from u2cdr.methods._bank_method import BankSession
from u2cdr.methods._gallery_pseudo_labels import GalleryPseudoLabelMethod, pseudo_label_arguments
from u2cdr.models.prototype_classifier import PrototypeClassifier
from u2cdr.registry import METHODS

TRAIN_TOLERANCE = 1e-4
TEST_TOLERANCE = 1e-6


@dataclass
class CommonClassDetection:
    """CCD's verdict on the anchor rows (the rows after the fake and fill rows).

    Attributes:
        best_mass: ``[N]`` largest entry of each anchor row of the normalised plan Q̄.
        labels: ``[N]`` arg-max prototype of each anchor row.
        common: ``[N]`` bool, ``best_mass > 1/N_rows`` (every row counted, fake and fill too).
        confident: ``[N]`` bool, common and not pointing at a prototype whose column mass is
            below 1/K (a source-private class): the rows that train the classifier.
        column_mass: ``[K]`` column sums of Q̄, the new estimate of β.
    """

    best_mass: torch.Tensor
    labels: torch.Tensor
    common: torch.Tensor
    confident: torch.Tensor
    column_mass: torch.Tensor


def common_class_detection(similarity: torch.Tensor, column_mass: torch.Tensor, *,
                           skip_rows: int = 0, epsilon: float = 0.01, relaxation: float = 0.5,
                           tolerance: float = TEST_TOLERANCE) -> CommonClassDetection:
    """UniOT's ``ubot_CCD``: unbalanced OT of rows (uniform mass) onto prototypes (mass β).

    Args:
        similarity: ``[N_rows, K]`` cosine similarities of rows to prototypes (cost = −sim).
        column_mass: ``[K]`` β, summing to 1.
        skip_rows: leading rows (fake and memory fill) that take part but are not judged.
        epsilon, relaxation, tolerance: of ``unbalanced_sinkhorn``.
    """
    num_rows, num_prototypes = similarity.shape
    if not 0 <= skip_rows < num_rows:
        raise ValueError(f"skip_rows must lie in 0..{num_rows - 1}, got {skip_rows}")
    row_mass = torch.full((num_rows,), 1.0 / num_rows, dtype=torch.float64)
    plan = unbalanced_sinkhorn(-similarity.detach().cpu(), row_mass,
                               column_mass.detach().cpu().double(), epsilon=epsilon,
                               relaxation=relaxation, tolerance=tolerance)
    plan = plan / plan.sum()
    best_mass, labels = plan[skip_rows:].max(dim=1)
    common = best_mass > 1.0 / num_rows
    prototype_mass = plan.sum(dim=0)
    source_private = prototype_mass < 1.0 / num_prototypes
    confident = common & ~source_private[labels]
    device = similarity.device
    return CommonClassDetection(best_mass.to(device), labels.to(device), common.to(device),
                                confident.to(device), prototype_mass.to(device))


def adaptive_filling(features: torch.Tensor, prototypes: torch.Tensor, column_mass: torch.Tensor,
                     *, gamma: float = 0.7, generator: torch.Generator | None = None,
                     tolerance: float = TEST_TOLERANCE) -> tuple[torch.Tensor, int]:
    """UniOT's adaptive filling: ``(similarity with fake rows prepended [F + N, K], F)``.

    A row is "positive" when its best cosine exceeds γ. With at most half positive, copies of
    confidently common rows (a first CCD over all rows) are added until positives and negatives
    balance; with more than half, synthetic private rows ``normalize(½ f + ½ p_farthest)`` are
    added. Fakes are drawn at random (with replacement) with ``generator``.

    Args:
        features: ``[N, D]`` unit-norm features.
        prototypes: ``[K, D]`` unit-norm prototypes.
        column_mass: ``[K]`` β for the first CCD.
        gamma: γ, the cosine above which a row counts as positive.
        generator: random source of the fakes (None: torch's global generator).
        tolerance: of the first CCD.
    """
    similarity = features @ prototypes.t()
    positive = int((similarity.max(dim=1).values > gamma).sum())
    negative = len(features) - positive
    if positive <= negative:
        fake_size = negative - positive
        if fake_size == 0:
            return similarity, 0
        detection = common_class_detection(similarity, column_mass, tolerance=tolerance)
        confident_rows = torch.nonzero(detection.confident).view(-1)
        if len(confident_rows) == 0:
            return similarity, 0
        chosen = confident_rows[torch.randint(len(confident_rows), (fake_size,),
                                              generator=generator).to(confident_rows.device)]
        return torch.cat([similarity[chosen], similarity]), fake_size
    fake_size = positive - negative
    farthest = similarity.argmin(dim=1)
    fake_private = F.normalize(0.5 * features + 0.5 * prototypes[farthest], dim=1)
    chosen = torch.randint(len(features), (fake_size,), generator=generator).to(features.device)
    return torch.cat([fake_private[chosen] @ prototypes.t(), similarity]), fake_size


@METHODS.register_module(name="uniot")
class UniOT(GalleryPseudoLabelMethod):
    """UniOT, label-free: unbalanced-OT common class detection + OT private class discovery (Chang et al., NeurIPS 2022).

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
        classifier_temperature: T of the gallery classifier and of the cluster head.
        source_weight: weight of the cross-entropy on gallery pseudo-labels.
        pcd_weight: λ of PCD.
        ccd_weight: λ of the CCD cross-entropy.
        target_prototypes: K_t, the cluster head's prototype count.
        ccd_fill: memory rows added to each CCD transport problem.
        ccd_start_epoch: first epoch (0-based) with the CCD term.
        gamma: γ of adaptive filling.
        mass_momentum: μ of the EMA of β.
        uot_epsilon: ε of the unbalanced OT.
        uot_relaxation: KL weight of its marginals.
        pcd_epsilon: ε of PCD's balanced Sinkhorn.
        pcd_iterations: its iterations.
        head_lr_scale: learning rate of the classifier and cluster head relative to ``lr``.
        head_gradient_scale: fraction of the heads' gradient that reaches the encoder (1 = the
            paper; < 1 is flagged).
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "open-set domain adaptation"
    stage: ClassVar[str] = "uniot"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 50,
                 batch_size: int = 36, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 instance_weight: float = 1.0, num_clusters: str | int = "elbow",
                 elbow_k_max: int | None = 30, kmeans_iterations: int = 20,
                 recluster_every: int = 1, classifier_temperature: float = 0.1,
                 source_weight: float = 1.0, pcd_weight: float = 0.1, ccd_weight: float = 0.1,
                 target_prototypes: int = 50, ccd_fill: int = 2000, ccd_start_epoch: int = 1,
                 gamma: float = 0.7, mass_momentum: float = 0.7, uot_epsilon: float = 0.01,
                 uot_relaxation: float = 0.5, pcd_epsilon: float = 0.05, pcd_iterations: int = 3,
                 head_lr_scale: float = 1.0,
                 head_gradient_scale: float = 1.0, device: str = "cpu", num_workers: int = 0) -> None:
        super().__init__(**pseudo_label_arguments(locals()))
        if pcd_weight < 0 or ccd_weight < 0:
            raise ValueError(f"pcd_weight and ccd_weight must be >= 0, got {pcd_weight} and "
                             f"{ccd_weight}")
        if target_prototypes < 2 or ccd_fill < 0 or ccd_start_epoch < 0 or pcd_iterations < 1:
            raise ValueError(f"need target_prototypes >= 2, ccd_fill >= 0, ccd_start_epoch >= 0 and "
                             f"pcd_iterations >= 1, got {target_prototypes}, {ccd_fill}, "
                             f"{ccd_start_epoch} and {pcd_iterations}")
        if not 0 <= mass_momentum < 1 or not -1 <= gamma <= 1:
            raise ValueError(f"mass_momentum must lie in [0, 1) and gamma in [-1, 1], got "
                             f"{mass_momentum} and {gamma}")
        if uot_epsilon <= 0 or uot_relaxation <= 0 or pcd_epsilon <= 0:
            raise ValueError("uot_epsilon, uot_relaxation and pcd_epsilon must be > 0")
        self.pcd_weight = pcd_weight
        self.ccd_weight = ccd_weight
        self.target_prototypes = target_prototypes
        self.ccd_fill = ccd_fill
        self.ccd_start_epoch = ccd_start_epoch
        self.gamma = gamma
        self.mass_momentum = mass_momentum
        self.uot_epsilon = uot_epsilon
        self.uot_relaxation = uot_relaxation
        self.pcd_epsilon = pcd_epsilon
        self.pcd_iterations = pcd_iterations
        self.cluster_head: PrototypeClassifier | None = None
        self.current_epoch = 0

    def build_method_heads(self, num_classes: int) -> None:
        """The cluster head (K_t target prototypes) and a uniform column mass β over K."""
        self.cluster_head = PrototypeClassifier(self.encoder.out_dim, self.target_prototypes,
                                                self.classifier_temperature).to(self.device)
        self.estimates.tensors["column_mass"] = torch.full((num_classes,), 1.0 / num_classes,
                                                               dtype=torch.float64)

    def head_modules(self) -> dict[str, torch.nn.Module]:
        return {**super().head_modules(), "cluster_head": self.cluster_head}

    @property
    def column_mass(self) -> torch.Tensor:
        """β ``[K]``: the gallery prototypes' estimated share of common mass."""
        return self.estimates.tensors["column_mass"]

    def on_epoch_start(self, session: BankSession, epoch: int) -> None:
        super().on_epoch_start(session, epoch)
        self.current_epoch = epoch

    def method_weights(self) -> dict[str, float]:
        return {"L_PCD_A": self.pcd_weight, "L_CCD_A": self.ccd_weight}

    def _memory_rows(self, bank: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` distinct random rows of ``bank`` (all of them when it is smaller)."""
        return bank[torch.randperm(len(bank))[:count].to(bank.device)]

    def method_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                     z_b: torch.Tensor, idx_b: torch.Tensor,
                     logits_b: torch.Tensor) -> dict[str, torch.Tensor]:
        bank = session.banks["A"].entries
        features = F.normalize(z_a, dim=1)
        terms = {"L_PCD_A": self._pcd(features, idx_a.to(self.device), bank)}
        terms["L_CCD_A"] = features.new_zeros(())
        if self.current_epoch >= self.ccd_start_epoch:
            terms["L_CCD_A"] = self._ccd(features, bank)
        return terms

    def _pcd(self, features: torch.Tensor, indices: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        """PCD with each sample's nearest neighbour among the bank (own entry excluded) and batch."""
        with torch.no_grad():
            bank_similarity = features @ bank.t()
            bank_similarity[torch.arange(len(features)), indices] = -2.0
            batch_similarity = features @ features.t()
            batch_similarity.fill_diagonal_(-2.0)
            nearest = torch.cat([bank_similarity, batch_similarity], dim=1).argmax(dim=1)
        candidates = torch.cat([bank.detach(), features])
        neighbours = candidates[nearest]
        fill = self._memory_rows(bank, self.target_prototypes)
        return private_class_discovery(self.cluster_head(features), self.cluster_head(neighbours),
                                       self.cluster_head(fill), self.classifier_temperature,
                                       epsilon=self.pcd_epsilon, iterations=self.pcd_iterations)

    def _ccd(self, features: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        """CE of the classifier on the batch's confidently common queries; updates β."""
        prototypes = self.classifier.prototypes().detach()
        with torch.no_grad():
            fill = self._memory_rows(bank, self.ccd_fill)
            rows = torch.cat([fill, features.detach()])
            similarity, fake_size = adaptive_filling(rows, prototypes, self.column_mass,
                                                     gamma=self.gamma, tolerance=TRAIN_TOLERANCE)
            detection = common_class_detection(similarity, self.column_mass,
                                               skip_rows=fake_size + len(fill),
                                               epsilon=self.uot_epsilon,
                                               relaxation=self.uot_relaxation,
                                               tolerance=TRAIN_TOLERANCE)
            self.estimates.tensors["column_mass"] = (
                self.mass_momentum * self.column_mass
                + (1 - self.mass_momentum) * detection.column_mass.cpu().double())
        if not bool(detection.confident.any()):
            return features.new_zeros(())
        logits = self.classifier(features[detection.confident])
        return F.cross_entropy(logits, detection.labels[detection.confident])

    @torch.no_grad()
    def detect(self, query_features: np.ndarray) -> CommonClassDetection:
        """CCD on every query against the gallery prototypes, as UniOT's ``eval``."""
        query = F.normalize(self.query_tensor(query_features), dim=1)
        generator = torch.Generator().manual_seed(torch.initial_seed())
        prototypes = self.classifier.prototypes()
        similarity, fake_size = adaptive_filling(query, prototypes, self.column_mass,
                                                 gamma=self.gamma, generator=generator,
                                                 tolerance=TEST_TOLERANCE)
        return common_class_detection(similarity, self.column_mass, skip_rows=fake_size,
                                      epsilon=self.uot_epsilon, relaxation=self.uot_relaxation,
                                      tolerance=TEST_TOLERANCE)

    def detect_private(self, query_features: np.ndarray,
                       gallery_features: np.ndarray) -> np.ndarray:
        """UniOT's rule: private ⇔ best transported mass ≤ 1/N_rows (not common)."""
        return (~self.detect(query_features).common).cpu().numpy()

    def describe(self) -> dict:
        info = super().describe()
        if self.classifier is not None:
            info["column_mass"] = [round(float(mass), 6) for mass in self.column_mass]
        info["gap_decisions"].update({
            "roles": "UniOT source = gallery B (its pseudo-classes are the classifier's "
                     "prototypes), target = query domain A (CCD onto gallery prototypes, PCD "
                     "on the query side)",
            "memory": "A's momentum memory bank stands in for UniOT's memory queue; fills are "
                      "uniform samples without replacement",
            "ccd_start": f"epoch {self.ccd_start_epoch} (UniOT: after step 100)",
            "private_detection": ("CCD on all queries with adaptive filling (gamma "
                                  f"{self.gamma}) and the learnt column mass: private when the "
                                  "best entry of the query's normalised plan row <= 1/N_rows; "
                                  "gallery features unused (the gallery enters through the "
                                  "prototypes)"),
        })
        return info
