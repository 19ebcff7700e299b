"""PCS: prototypical cross-domain self-supervised learning (Yue et al., CVPR 2021), without its classifier.

PCS learns category structure inside each domain and aligns it across domains:

* **in-domain instance discrimination** against each domain's memory bank (as InstDisc);
* **in-domain prototypical contrast** (PCL's ProtoNCE): each domain's bank is clustered with
  spherical K-means at several granularities (the released configs use k = C and 2C, each
  repeated ``n_k`` times with different seeds), and every feature is pulled to its own
  cluster's prototype and pushed from the domain's other prototypes, with PCL's per-cluster
  concentration φ as temperature;
* **cross-domain instance-prototype matching**: the entropy of each feature's softmax
  similarity over the *other* domain's prototypes is minimised, so every image commits to a
  few clusters of the other domain.

PCS's few-shot parts (the cosine classifier on labelled source images, its pseudo-labels and
the mutual-information terms on classifier outputs) need labels or a classifier and are
dropped, as UEM App. B.2 drops classifier parts of baselines.

Algorithm (reads top to bottom like ``fit``):
    1. M_A, M_B ← normalised head features of the initial model; base cluster counts C_A, C_B
       ← ``num_clusters`` ('oracle': each domain's class count, 'elbow': Kneedle on the
       initial bank, or an int).
    2. for each epoch:
           for D in {A, B}, for m in cluster_multiples, for r < kmeans_repeats:
               spherical K-means(M_D, m·C_D) → prototypes P, assignments, concentrations φ
           for each paired batch:
               L = Σ_D [ w_I·INCE(z_D, M_D)
                         + w_P·mean_P ProtoNCE_φ(z_D; P_D)              (in-domain)
                         + w_C·mean_P H(softmax(z_D P_{D̄}ᵀ/τ)) ]       (cross-domain)
               SGD step;  M ← β M + (1 − β) z
    3. retrieval features = normalised head output of the eval view.

Readings (where paper and code differ, or neither says):
    * ``instance_weight``: the released configs (``zhengzangw/PCS-FUDA``, ``config/*.json``)
      list no 'ID-each' term and ``ssda.py`` calls ID "not used in essay"; the method summary
      (ProtoNCE follows PCL, which keeps an instance term) keeps it. Default 1; set 0 for
      the configs' reading.
    * ``concentration='pcl'``: φ_k = Σ‖v−c_k‖ / (Z_k log(Z_k + 10)), floored at 0.05, as the
      code's ``compute_variance`` (not PCL's rescaling to mean τ); an empty cluster gets the
      mean φ of the others (the code writes −1, which would flip its logits). 'fixed' uses
      ``temperature`` for every prototype (the code's 'proto-fix' option).
    * One SGD step per paired batch on both domains' terms; the code steps once per domain.
    * Learning rate: the code decays it as ``(1 + 10 p)^-0.75``; here cosine to zero. The
      code's conv layers train at 0.1× (``conv_lr_ratio``) — ``backbone_lr_scale``.
    * Epochs: the code trains until early stopping on labelled validation accuracy, which
      U²CDR has no labels for; the epoch count is a config value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch

from u2cdr.losses.cross_domain_entropy import CrossDomainEntropy
from u2cdr.losses.proto_nce import ProtoNCE
from u2cdr.methods._bank_method import DOMAINS, BankMethod, BankSession, instdisc_arguments
from u2cdr.models.cluster_count import resolve_num_clusters
from u2cdr.models.clustering import kmeans
from u2cdr.registry import METHODS

CONCENTRATIONS = ("pcl", "fixed")


@dataclass
class Clustering:
    """One K-means run on one domain's bank: ``prototypes [k, D]``, ``assignments [N]``,
    ``concentration [k]`` (φ, the per-prototype temperature)."""

    prototypes: torch.Tensor
    assignments: torch.Tensor
    concentration: torch.Tensor


def cluster_concentration(points: torch.Tensor, assignments: torch.Tensor,
                          prototypes: torch.Tensor, alpha: float = 10.0,
                          floor: float = 0.05) -> torch.Tensor:
    """PCL's concentration ``φ_k = Σ_{i∈k} ‖v_i − c_k‖ / (Z_k log(Z_k + α))``, at least ``floor``.

    A tight, populous cluster gets a small φ (a sharp softmax); a loose or tiny one a large φ.
    ``points [N, D]``, ``assignments [N]`` in ``0..k-1``, ``prototypes [k, D]`` → ``[k]``.
    Empty clusters get the mean φ of the non-empty ones.
    """
    num_clusters = prototypes.shape[0]
    distances = (points - prototypes[assignments]).norm(dim=1)
    sums = torch.zeros(num_clusters, dtype=points.dtype, device=points.device)
    sums.index_add_(0, assignments, distances)
    counts = torch.bincount(assignments, minlength=num_clusters).to(points.dtype)
    occupied = counts > 0
    phi = torch.empty_like(sums)
    phi[occupied] = sums[occupied] / (counts[occupied] * torch.log(counts[occupied] + alpha))
    phi[occupied] = phi[occupied].clamp(min=floor)
    phi[~occupied] = phi[occupied].mean()
    return phi


class _BaseClusterCounts:
    """The per-domain base cluster count, fixed at the fresh start and kept in checkpoints.

    Resolving 'elbow' again on a resumed run's bank could give another count, so the counts
    travel with the weights.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def state_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.counts = {domain: int(count) for domain, count in state.items()}


@METHODS.register_module(name="pcs")
class PCS(BankMethod):
    """PCS: in-domain ID + multi-granularity ProtoNCE + cross-domain prototype entropy (Yue et al., CVPR 2021).

    Constructor defaults follow PCS's released configs (``config/office/*.json`` and
    ``pcs/run.py``): lr 0.01 with the backbone at 0.1×, weight decay 5e-4, batch 64 per
    domain, 512-d linear head, τ 0.1, bank momentum 0.5, k ∈ {C, 2C}.

    Args:
        backbone: backbone config, e.g. ``dict(type='resnet50', checkpoint=...)``.
        head: projection head kind ('mlp', 'linear', 'none'); PCS replaces the ResNet's fc by
            a linear layer to ``low_dim``.
        low_dim: projection width.
        epochs: training epochs; an epoch covers the larger domain once.
        batch_size: images per domain per step.
        lr: initial learning rate of the head, cosine-annealed to zero.
        backbone_lr_scale: the backbone's learning rate relative to ``lr`` (``conv_lr_ratio``).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        temperature: τ of instance discrimination and of the cross-domain softmax (and of
            ProtoNCE when ``concentration='fixed'``).
        bank_momentum: β of the memory-bank update.
        renormalize_bank: L2-normalise bank entries after each update.
        negatives: instance-discrimination negatives, 'bank' or 'batch'.
        instance_weight: weight of in-domain instance discrimination (see the module readings).
        prototype_weight: weight of in-domain ProtoNCE.
        cross_domain_weight: weight of the cross-domain instance-prototype entropy.
        num_clusters: base cluster count per domain: 'oracle' (that domain's number of
            classes — label knowledge, UEM App. B.2, recorded in ``flags``), 'elbow', or an int.
        cluster_multiples: granularities as multiples of the base count (PCS: (1, 2)).
        kmeans_repeats: K-means runs per granularity with different seeds (PCS: ``n_k`` = 15).
        kmeans_iterations: Lloyd iterations per run (PCS: 40).
        concentration: 'pcl' (per-cluster φ) or 'fixed' (τ for every prototype).
        elbow_k_max: largest count the Elbow search tries (None: the estimator's default).
        embedding: retrieval features, 'head' or 'backbone'.
        device: 'cpu' or 'cuda'.
        num_workers: data-loader worker processes.
    """

    family: ClassVar[str] = "CDRL"
    stage: ClassVar[str] = "pcs"

    def __init__(self, backbone: dict, head: str = "linear", low_dim: int = 512, epochs: int = 100,
                 batch_size: int = 64, lr: float = 0.01, backbone_lr_scale: float = 0.1,
                 momentum: float = 0.9, weight_decay: float = 5e-4, temperature: float = 0.1,
                 bank_momentum: float = 0.5, renormalize_bank: bool = True, negatives: str = "bank",
                 instance_weight: float = 1.0, prototype_weight: float = 1.0,
                 cross_domain_weight: float = 1.0, num_clusters: str | int = "elbow",
                 cluster_multiples: tuple[int, ...] | list[int] = (1, 2), kmeans_repeats: int = 1,
                 kmeans_iterations: int = 40, concentration: str = "pcl",
                 elbow_k_max: int | None = None, embedding: str = "head", device: str = "cpu",
                 num_workers: int = 0) -> None:
        super().__init__(**instdisc_arguments(locals()))
        if concentration not in CONCENTRATIONS:
            raise ValueError(f"concentration={concentration!r} is unknown; valid: "
                             f"{', '.join(CONCENTRATIONS)}")
        if isinstance(num_clusters, str) and num_clusters not in ("oracle", "elbow"):
            raise ValueError(f"num_clusters={num_clusters!r} is unknown; valid: 'oracle', 'elbow' "
                             "or an integer >= 2")
        multiples = tuple(int(m) for m in cluster_multiples)
        if not multiples or min(multiples) < 1:
            raise ValueError(f"cluster_multiples must be positive integers, got {cluster_multiples!r}")
        if kmeans_repeats < 1 or kmeans_iterations < 1:
            raise ValueError(f"kmeans_repeats and kmeans_iterations must be >= 1, got "
                             f"{kmeans_repeats} and {kmeans_iterations}")
        weights = {"instance_weight": instance_weight, "prototype_weight": prototype_weight,
                   "cross_domain_weight": cross_domain_weight, "backbone_lr_scale": backbone_lr_scale}
        negative = [name for name, value in weights.items() if value < 0]
        if negative:
            raise ValueError(f"{', '.join(negative)} must be >= 0")
        self.instance_weight = instance_weight
        self.prototype_weight = prototype_weight
        self.cross_domain_weight = cross_domain_weight
        self.backbone_lr_scale = backbone_lr_scale
        self.num_clusters = num_clusters
        self.cluster_multiples = multiples
        self.kmeans_repeats = kmeans_repeats
        self.kmeans_iterations = kmeans_iterations
        self.concentration = concentration
        self.elbow_k_max = elbow_k_max
        self.temperature = temperature
        # Prototypes arrive already divided by φ, so ProtoNCE itself must not rescale them.
        self.proto_nce = ProtoNCE(temperature=1.0)
        self.cross_domain_entropy = CrossDomainEntropy(temperature=temperature)
        self.base_counts = _BaseClusterCounts()
        self.clusterings: dict[str, list[Clustering]] = {}

    @property
    def loss_weights(self) -> dict[str, float]:
        return {**super().loss_weights,
                **{f"L_PC_{domain}": self.prototype_weight for domain in DOMAINS},
                **{f"L_I2C_{domain}": self.cross_domain_weight for domain in DOMAINS}}

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.encoder.backbone.parameters()),
                 "lr_scale": self.backbone_lr_scale},
                {"params": list(self.encoder.head.parameters()), "lr_scale": 1.0}]

    def extra_state(self) -> dict[str, _BaseClusterCounts]:
        return {"base_cluster_counts": self.base_counts}

    def on_fresh_start(self, session: BankSession) -> None:
        """Fix each domain's base cluster count on the initial bank (or its labels for 'oracle')."""
        for domain, data in zip(DOMAINS, (session.pair.query, session.pair.gallery)):
            labels = data.labels if self.num_clusters == "oracle" else None
            self.base_counts.counts[domain] = resolve_num_clusters(
                self.num_clusters, session.banks[domain].entries.cpu().numpy(), labels,
                seed=self._kmeans_seed(0, 0), k_max=self.elbow_k_max)

    def on_epoch_start(self, session: BankSession, epoch: int) -> None:
        """Re-cluster both banks at every granularity and repeat (PCS: ``kmeans_freq`` = 1)."""
        self.clusterings = {}
        for domain in DOMAINS:
            bank = session.banks[domain].entries
            points = bank.detach().cpu().numpy()
            runs = []
            for run, multiple in enumerate(m for m in self.cluster_multiples
                                           for _ in range(self.kmeans_repeats)):
                k = min(multiple * self.base_counts.counts[domain], len(points))
                centroids, assignments, _ = kmeans(points, k, seed=self._kmeans_seed(epoch, run),
                                                   niter=self.kmeans_iterations, spherical=True)
                prototypes = torch.from_numpy(centroids).to(bank)
                labels = torch.from_numpy(assignments).to(bank.device)
                if self.concentration == "pcl":
                    phi = cluster_concentration(bank, labels, prototypes)
                else:
                    phi = torch.full((k,), self.temperature, dtype=bank.dtype, device=bank.device)
                runs.append(Clustering(prototypes, labels, phi))
            self.clusterings[domain] = runs

    def _kmeans_seed(self, epoch: int, run: int) -> int:
        """Different per epoch and run (the code: ``k_idx · epoch + 1234``), fixed by the cell's seed."""
        return (torch.initial_seed() + 1000 * epoch + run) % (2**31 - 1)

    def extra_terms(self, session: BankSession, z_a: torch.Tensor, idx_a: torch.Tensor,
                    z_b: torch.Tensor, idx_b: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.clusterings:
            raise RuntimeError("PCS has no prototypes yet; on_epoch_start must run before a step")
        terms = {}
        for domain, other, features, indices in (("A", "B", z_a, idx_a), ("B", "A", z_b, idx_b)):
            indices = indices.to(self.device)
            own = self.clusterings[domain]
            terms[f"L_PC_{domain}"] = sum(
                self.proto_nce(features, c.prototypes / c.concentration[:, None],
                               c.assignments[indices]) for c in own) / len(own)
            foreign = self.clusterings[other]
            terms[f"L_I2C_{domain}"] = sum(
                self.cross_domain_entropy(features, c.prototypes) for c in foreign) / len(foreign)
        return terms

    def describe(self) -> dict:
        info = super().describe()
        info["base_cluster_counts"] = dict(self.base_counts.counts)
        info["cluster_counts"] = {domain: [len(c.prototypes) for c in runs]
                                  for domain, runs in self.clusterings.items()}
        info["gap_decisions"].update({
            "instance_discrimination": f"weight {self.instance_weight} (released configs: none)",
            "concentration": ("PCL phi per cluster, floor 0.05, no rescaling" if
                              self.concentration == "pcl" else f"fixed tau {self.temperature}"),
            "clustering": "spherical faiss K-means on each domain's bank before every epoch",
            "dropped": "few-shot cosine classifier, pseudo-labels and MIM terms (need labels)",
        })
        info["flags"] = {"num_clusters": self.num_clusters}
        return info
