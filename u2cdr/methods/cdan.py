"""CDAN, conditional domain-adversarial networks (Long et al., NeurIPS 2018), label-free.

CDAN conditions DANN's discriminator on the classifier's prediction g: it sees the multilinear
map T(f, g) = f ⊗ g (randomized, T⊙, when d_f · d_g > 4096), so the feature distribution is
aligned class by class rather than as a whole; CDAN+E also weights each example by its
prediction's certainty, 1 + exp(−H(g)).

Adaptation to U²CDR (neither domain has labels):
    * the source-classification loss is replaced, as in ``dann``, by per-domain instance
      discrimination against momentum memory banks (UEM Eqs. 5–6) on both domains;
    * the classifier prediction g is replaced by a soft cluster assignment: the memory banks
      of both domains are clustered together with spherical K-means (faiss,
      ``u2cdr.models.clustering``) before every epoch, and g = softmax(z·Cᵀ / τ_g) over the K
      centroids C. Clustering both banks together gives both domains one shared "label space",
      as CDAN's one classifier does; ``centroids_from='query'`` clusters the query bank only
      (the analogue of a classifier trained on a source domain). K comes from
      ``num_clusters`` ('elbow' on the initial banks, an int, or 'oracle'), fixed for the run.
    * g carries no gradient (the released CDAN code detaches the softmax too).

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of the initial model; K ← num_clusters on them;
       T ← T⊗ or T⊙ (d_f · K vs. randomize_above); G_d ← DomainClassifier(dim T).
    2. for each epoch: C ← spherical K-means(M_A ∪ M_B, K)
           for each paired batch, p = step / total steps:
               z_A, z_B = f_θ(x_A), f_θ(x_B);  g = softmax(sg(z)·Cᵀ / τ_g)
               λ = adversarial_weight · (2/(1 + exp(−γ p)) − 1)
               L = INCE(z_A, M_A) + INCE(z_B, M_B)
                   + Σ w · BCE(G_d(GRL_λ(T(z, g))), [1; 0]) / Σ w      (w = 1, or CDAN+E's)
               SGD step;  M ← β M + (1 − β) z
    3. retrieval features = normalised head output of the eval view.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from u2cdr.data.pair import DomainPair
from u2cdr.losses.conditional_adversarial import conditional_adversarial_loss, entropy_weights
from u2cdr.methods._bank_method import BankSession
from u2cdr.methods._trainer import EpochCheckpoint
from u2cdr.methods.dann import DANN, dann_arguments
from u2cdr.models.cluster_count import resolve_num_clusters
from u2cdr.models.clustering import kmeans
from u2cdr.models.domain_classifier import DomainClassifier
from u2cdr.models.multilinear_map import (RANDOM_DIM, RANDOMIZE_ABOVE, RANDOMIZED_CHOICES,
                                          MultilinearMap, RandomizedMultilinearMap,
                                          conditioning_map)
from u2cdr.registry import METHODS

CENTROID_SOURCES = ("both", "query")

ADAPTATION = ("label-free: the source-classification loss is replaced by per-domain instance "
              "discrimination (InstanceNCE against momentum memory banks, UEM Eqs. 5-6) on both "
              "domains, and the classifier prediction g by soft assignments softmax(z C^T / tau_g) "
              "to spherical K-means centroids C of the memory banks, re-clustered every epoch; "
              "the discriminator sees the multilinear map z (x) g through gradient reversal")


class ClusterCount:
    """K, fixed before training and kept in every checkpoint (the discriminator's shape
    depends on it, and an Elbow search rerun on a resumed model could pick another)."""

    def __init__(self) -> None:
        self.value: int | None = None

    def state_dict(self) -> dict[str, int]:
        if self.value is None:
            raise RuntimeError("the cluster count is saved before it was resolved")
        return {"num_clusters": self.value}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.value = int(state["num_clusters"])


@METHODS.register_module(name="cdan")
class CDAN(DANN):
    """CDAN: adversarial alignment conditioned on soft K-means assignments, f ⊗ g (Long et al., NeurIPS 2018).

    The adversarial defaults are CDAN's (λ ramp γ 10, 1024-wide discriminator at 10× the
    encoder's rate, T⊙ with d = 1024 above 4096 dimensions); the instance-discrimination ones
    InstDisc's. ``benchmarks/_base_/methods/cdan.py`` holds the paper-scale settings.

    Args (beyond ``dann``'s):
        num_clusters: K, the width of g: 'elbow' (Kneedle on the initial clustered banks), an
            int, or 'oracle' (the number of classes — label knowledge, recorded in ``flags``).
        elbow_k_max: largest K the Elbow search tries (None: the estimator's default).
        kmeans_iterations: Lloyd iterations per clustering.
        centroids_from: 'both' (cluster M_A ∪ M_B: one shared label space) or 'query' (M_A).
        assignment_temperature: τ_g of g = softmax(z·Cᵀ / τ_g).
        entropy_conditioning: CDAN+E's per-example weights 1 + exp(−H(g)).
        randomized: 'auto' (T⊙ when d_f · K > ``randomize_above``), 'always' or 'never'.
        randomize_above: the 'auto' threshold (CDAN: 4096).
        random_dim: output width of T⊙ (CDAN's code: 1024).
    """

    stage: ClassVar[str] = "cdan"
    adaptation: ClassVar[str] = ADAPTATION

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 64, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 5e-4, temperature: float = 0.07, bank_momentum: float = 0.99,
                 renormalize_bank: bool = True, negatives: str = "bank",
                 adversarial_weight: float = 1.0, grl_schedule: str = "dann",
                 grl_gamma: float = 10.0, discriminator_hidden: int = 1024,
                 discriminator_lr_scale: float = 10.0, num_clusters: str | int = "elbow",
                 elbow_k_max: int | None = None, kmeans_iterations: int = 20,
                 centroids_from: str = "both", assignment_temperature: float = 0.1,
                 entropy_conditioning: bool = False, randomized: str = "auto",
                 randomize_above: int = RANDOMIZE_ABOVE, random_dim: int = RANDOM_DIM,
                 embedding: str = "head", device: str = "cpu", num_workers: int = 0) -> None:
        super().__init__(**dann_arguments(DANN, locals()))
        if centroids_from not in CENTROID_SOURCES:
            raise ValueError(f"centroids_from={centroids_from!r} is unknown; valid: "
                             f"{', '.join(CENTROID_SOURCES)}")
        if randomized not in RANDOMIZED_CHOICES:
            raise ValueError(f"randomized={randomized!r} is unknown; valid: "
                             f"{', '.join(RANDOMIZED_CHOICES)}")
        if isinstance(num_clusters, str) and num_clusters not in ("oracle", "elbow"):
            raise ValueError(f"num_clusters={num_clusters!r} is unknown; valid: 'oracle', 'elbow' "
                             "or an integer >= 2")
        if assignment_temperature <= 0 or kmeans_iterations < 1 or random_dim < 1:
            raise ValueError(f"need assignment_temperature > 0, kmeans_iterations >= 1 and "
                             f"random_dim >= 1; got {assignment_temperature}, {kmeans_iterations}, "
                             f"{random_dim}")
        self.num_clusters = num_clusters
        self.elbow_k_max = elbow_k_max
        self.kmeans_iterations = kmeans_iterations
        self.centroids_from = centroids_from
        self.assignment_temperature = assignment_temperature
        self.entropy_conditioning = entropy_conditioning
        self.randomized = randomized
        self.randomize_above = randomize_above
        self.random_dim = random_dim
        self.seed = int(torch.initial_seed() % (2**31 - 1))
        self.cluster_count = ClusterCount()
        self.conditioning: MultilinearMap | RandomizedMultilinearMap | None = None
        self.centroids: torch.Tensor | None = None
        self._initial_features: dict[str, np.ndarray] | None = None

    def build_domain_classifier(self) -> None:
        """Built in ``fit``: its input width d_f · K waits for K."""
        return None

    # ----- fit -----------------------------------------------------------------------------
    def fit(self, pair: DomainPair, work_dir: Path) -> None:
        self.prepare_discriminator(pair, Path(work_dir))
        super().fit(pair, work_dir)

    def prepare_discriminator(self, pair: DomainPair, work_dir: Path) -> None:
        """Resolve K, then build T (T⊗ or T⊙) and G_d on it; runs before the optimiser exists."""
        self.cluster_count.value = self._resolve_cluster_count(pair, work_dir)
        self.conditioning = conditioning_map(self.encoder.out_dim, self.cluster_count.value,
                                             self.randomized, self.randomize_above,
                                             self.random_dim).to(self.device)
        self.domain_classifier = DomainClassifier(self.conditioning.out_dim,
                                                  self.discriminator_hidden).to(self.device)

    def _resolve_cluster_count(self, pair: DomainPair, work_dir: Path) -> int:
        """K from the checkpoint on a resumed run, else ``num_clusters`` on the initial banks."""
        checkpoint = EpochCheckpoint(work_dir, self.stage)
        if checkpoint.exists():
            saved = checkpoint.load().get("state", {})
            if "cluster_count" in saved:
                return int(saved["cluster_count"]["num_clusters"])
        self._initial_features = {"A": self._embed_head(pair.query),
                                  "B": self._embed_head(pair.gallery)}
        labels = None
        if self.num_clusters == "oracle":  # only the class count is read
            labels = (np.asarray(pair.query.labels) if self.centroids_from == "query" else
                      np.concatenate([np.asarray(pair.query.labels), np.asarray(pair.gallery.labels)]))
        return resolve_num_clusters(self.num_clusters, self._clustering_points(self._initial_features),
                                    labels, seed=self.seed, k_max=self.elbow_k_max)

    def _clustering_points(self, banks: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.centroids_from == "query":
            return np.ascontiguousarray(banks["A"], dtype=np.float32)
        return np.ascontiguousarray(np.concatenate([banks["A"], banks["B"]]), dtype=np.float32)

    # ----- BankMethod hooks -----------------------------------------------------------------
    def initialize_session(self, session: BankSession) -> None:
        """Fill the banks with the initial features already computed to resolve K."""
        features = self._initial_features or {"A": self._embed_head(session.pair.query),
                                              "B": self._embed_head(session.pair.gallery)}
        session.banks["A"].initialize(torch.from_numpy(features["A"]))
        session.banks["B"].initialize(torch.from_numpy(features["B"]))
        self._initial_features = None
        self.on_fresh_start(session)

    def extra_state(self) -> dict[str, object]:
        return {**super().extra_state(), "cluster_count": self.cluster_count,
                "conditioning_map": self.conditioning}

    def on_epoch_start(self, session: BankSession, epoch: int) -> None:
        """Re-cluster the banks: C ← spherical K-means(M_A ∪ M_B or M_A, K) (faiss)."""
        points = self._clustering_points({domain: bank.entries.detach().cpu().numpy()
                                          for domain, bank in session.banks.items()})
        centroids, _, _ = kmeans(points, self.cluster_count.value,
                                 seed=(self.seed + 1000 * epoch) % (2**31 - 1),
                                 niter=self.kmeans_iterations, spherical=True)
        self.centroids = torch.from_numpy(centroids).to(self.device)

    def soft_assignments(self, features: torch.Tensor) -> torch.Tensor:
        """g = softmax(sg(z)·Cᵀ / τ_g), ``[B, K]``: the cluster "prediction" CDAN conditions on."""
        if self.centroids is None:
            raise RuntimeError("CDAN has no centroids yet; on_epoch_start must run before a step")
        return F.softmax(features.detach() @ self.centroids.t() / self.assignment_temperature, dim=1)

    def adversarial_loss(self, z_a: torch.Tensor, z_b: torch.Tensor,
                         coefficient: float) -> torch.Tensor:
        """CDAN Eq. 7 (and CDAN+E Eq. 8) with g from the cluster centroids."""
        g_a, g_b = self.soft_assignments(z_a), self.soft_assignments(z_b)
        weights = ((entropy_weights(g_a), entropy_weights(g_b)) if self.entropy_conditioning
                   else (None, None))
        return conditional_adversarial_loss(self.domain_classifier, self.conditioning(z_a, g_a),
                                            self.conditioning(z_b, g_b), coefficient, *weights)

    def describe(self) -> dict:
        info = super().describe()
        map_kind = (None if self.conditioning is None else
                    "randomized" if isinstance(self.conditioning, RandomizedMultilinearMap)
                    else "multilinear")
        banks = "the query bank" if self.centroids_from == "query" else "the two banks together"
        info["num_clusters_used"] = self.cluster_count.value
        info["conditioning_map"] = map_kind
        info["gap_decisions"].update({
            "discriminator_input": "multilinear map of the normalised head output z and g "
                                   f"({map_kind}; randomized={self.randomized!r}, above "
                                   f"{self.randomize_above} dims, d={self.random_dim})",
            "predictions": f"g = softmax(z C^T / {self.assignment_temperature}), C = spherical "
                           f"faiss K-means of {banks} before every epoch; no gradient through g",
            "entropy_conditioning": ("CDAN+E: weights 1 + exp(-H(g)), normalised per domain, no "
                                     "gradient" if self.entropy_conditioning else "off (plain CDAN)"),
        })
        info["flags"] = {"num_clusters": self.num_clusters}
        return info
