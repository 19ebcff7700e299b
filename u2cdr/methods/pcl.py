"""PCL, Prototypical Contrastive Learning (Li, Zhou, Xiong, Hoi, ICLR 2021), on the union of
both domains.

A self-supervised reference without any adaptation: MoCo v2 (``moco_v2``, one key queue for
both domains) plus ProtoNCE against K-means prototypes of both domains *together*; the domain
of an image is never used. Where UEM and UCDIR cluster each domain alone, PCL's prototypes are
whatever clusters the pooled features form, so they show what clustering without any
cross-domain step gives.

Algorithm (EM, reads top to bottom like ``fit``):
    for each epoch e:
        E-step (e ≥ warm-up): v' = key-encoder projections of every image of A and B (eval
            view, L2-normalised); for each K_m of ``num_clusters``: K-means on v' → centroids
            c, assignments; concentration per cluster (Eq. 12)
                φ_c = Σ_{z∈c} ||v'_z − c||₂ / (Z log(Z + α))        (Z = cluster size, α = 10)
            (a cluster of ≤ 1 point gets the largest φ), clipped to the ``concentration_clip``
            percentiles and scaled so that mean φ = τ; prototypes = normalised c.
        M-step, per paired batch (2B images of both domains, two views each), MoCo v2's step
            with (Eq. 11)
                L = InfoNCE_τ(q, k, U) + w · 1/M Σ_m −log exp(q·c_s/φ_s) / Σ_j exp(q·c_j/φ_j)
            (c_s = the image's prototype at granularity m; no ProtoNCE before the warm-up).
    retrieval features = the query encoder's L2-normalised ``embedding`` of the eval view.

Readings, each a kwarg recorded in ``describe``:
    - cluster counts: PCL uses (25,000, 50,000, 100,000) on ImageNet's 1.28 M images, i.e.
      about 51, 26 and 13 images per cluster. That transfers as ``images_per_cluster``
      (K = round(N / s) for the N images of both domains), which the paper-scale config uses;
      ``num_clusters`` gives counts directly. Counts above N are cut to N.
    - the denominator runs over all K prototypes: PCL samples r negative prototypes per batch,
      a saving for K up to 100,000 that r ≥ K − 1 reduces to this; here K is at most the two
      domains' image count.
    - ProtoNCE with per-cluster φ is ``u2cdr.losses.proto_nce.ProtoNCE`` with τ = 1 applied to
      prototypes divided by their φ: q·(c/φ) = (q·c)/φ.
    - φ is measured to the K-means centroids before normalisation (the points' own means);
      the percentile clip (10, 90) is PCL's released code, Eq. 12's text has none.
    - MoCo's readings (shuffle BN on one process, own older keys masked) as in ``moco_v2``.
"""
from __future__ import annotations

import logging
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from u2cdr.data.pair import DomainPair
from u2cdr.losses.proto_nce import ProtoNCE
from u2cdr.methods.moco_v2 import MoCoV2
from u2cdr.models.clustering import kmeans
from u2cdr.models.encoder import embed_loader
from u2cdr.registry import METHODS

logger = logging.getLogger("u2cdr")


def cluster_concentration(features: np.ndarray, centroids: np.ndarray, assignments: np.ndarray,
                          alpha: float = 10.0) -> np.ndarray:
    """PCL Eq. 12: φ_c = Σ_{z∈c} ||v'_z − c||₂ / (Z log(Z + α)), one value per cluster ``[K]``.

    A cluster with at most one point has no spread to measure; it gets the largest φ of the
    others (PCL's code), and 0 if no cluster has two points.
    """
    count = len(centroids)
    distances = np.linalg.norm(features.astype(np.float64) - centroids[assignments], axis=1)
    sizes = np.bincount(assignments, minlength=count).astype(np.float64)
    totals = np.bincount(assignments, weights=distances, minlength=count)
    measured = sizes > 1
    concentration = np.zeros(count, dtype=np.float64)
    concentration[measured] = totals[measured] / (sizes[measured] * np.log(sizes[measured] + alpha))
    concentration[~measured] = concentration[measured].max() if measured.any() else 0.0
    return concentration


def scale_concentration(concentration: np.ndarray, temperature: float,
                        clip_percentiles: Sequence[float] | None = (10.0, 90.0)) -> np.ndarray:
    """φ clipped to the given percentiles (PCL's code, "for stability"), then scaled so that its
    mean is ``temperature`` (PCL §3.3: "normalize φ … such that they have a mean of τ").

    When every φ is 0 (every cluster a single point) all clusters get ``temperature``.
    """
    phi = np.asarray(concentration, dtype=np.float64)
    if clip_percentiles is not None:
        low, high = np.percentile(phi, list(clip_percentiles))
        phi = phi.clip(low, high)
    mean = phi.mean()
    if mean <= 0:
        return np.full_like(phi, temperature)
    return temperature * phi / mean


@METHODS.register_module(name="pcl")
class PCL(MoCoV2):
    """Prototypical contrastive learning on both domains pooled (Li et al., ICLR 2021); label-free.

    Class defaults are PCL v2's ImageNet settings (MoCo v2 encoder with MLP head, τ 0.2, queue
    16,384, lr 0.03, 200 epochs, 20 warm-up epochs, K = 25k/50k/100k, α 10, K-means 20
    iterations × 5 restarts); ``benchmarks/_base_/methods/pcl.py`` sets the harness's
    MoCo-v2-initialised ResNet-50 schedule and cluster counts per image.

    Args:
        backbone, head, low_dim, epochs, batch_size, lr, momentum, weight_decay, temperature,
            key_momentum, queue_size, mask_own_keys, key_bn_splits, embedding, device,
            num_workers: as ``moco_v2`` (τ is also the mean concentration).
        num_clusters: K of each granularity (M = its length), used when ``images_per_cluster``
            is None; each is cut to the number of images.
        images_per_cluster: instead, K_m = round(N / s_m) for the N images of both domains.
        warmup_epochs: InfoNCE only before this epoch; E-step and ProtoNCE from it on.
        proto_weight: w, weight of the mean ProtoNCE (1 in PCL).
        concentration_alpha: α of Eq. 12 (10).
        concentration_clip: percentiles φ is clipped to before scaling, or None.
        kmeans_niter, kmeans_nredo: faiss K-means iterations and restarts (20, 5).
    """

    stage: ClassVar[str] = "pcl"

    def __init__(self, backbone: dict, head: str = "mlp", low_dim: int = 128, epochs: int = 200,
                 batch_size: int = 128, lr: float = 0.03, momentum: float = 0.9,
                 weight_decay: float = 1e-4, temperature: float = 0.2, key_momentum: float = 0.999,
                 queue_size: int = 16384, mask_own_keys: bool = True, key_bn_splits: int = 1,
                 num_clusters: Sequence[int] = (25000, 50000, 100000),
                 images_per_cluster: Sequence[float] | None = None, warmup_epochs: int = 20,
                 proto_weight: float = 1.0, concentration_alpha: float = 10.0,
                 concentration_clip: Sequence[float] | None = (10.0, 90.0),
                 kmeans_niter: int = 20, kmeans_nredo: int = 5, embedding: str = "backbone",
                 device: str = "cpu", num_workers: int = 0) -> None:
        super().__init__(backbone, head=head, low_dim=low_dim, epochs=epochs,
                         batch_size=batch_size, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, temperature=temperature,
                         key_momentum=key_momentum, queue_size=queue_size,
                         mask_own_keys=mask_own_keys, key_bn_splits=key_bn_splits,
                         embedding=embedding, device=device, num_workers=num_workers)
        if images_per_cluster is not None:
            if not images_per_cluster or any(size < 1 for size in images_per_cluster):
                raise ValueError(f"images_per_cluster must be a non-empty list of numbers >= 1, "
                                 f"got {images_per_cluster!r}")
        elif not num_clusters or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                                     or k < 2 for k in num_clusters):
            raise ValueError(f"num_clusters must be a non-empty list of ints >= 2, got "
                             f"{num_clusters!r}")
        if warmup_epochs < 0 or proto_weight < 0 or concentration_alpha <= 0:
            raise ValueError(f"need warmup_epochs >= 0, proto_weight >= 0 and "
                             f"concentration_alpha > 0, got {warmup_epochs}, {proto_weight} and "
                             f"{concentration_alpha}")
        if concentration_clip is not None and not (
                len(concentration_clip) == 2 and 0 <= concentration_clip[0]
                <= concentration_clip[1] <= 100):
            raise ValueError(f"concentration_clip must be None or two percentiles 0 <= low <= "
                             f"high <= 100, got {concentration_clip!r}")
        self.num_clusters = tuple(int(k) for k in num_clusters)
        self.images_per_cluster = (None if images_per_cluster is None
                                   else tuple(float(size) for size in images_per_cluster))
        self.warmup_epochs = warmup_epochs
        self.proto_weight = proto_weight
        self.concentration_alpha = concentration_alpha
        self.concentration_clip = (None if concentration_clip is None
                                   else tuple(float(p) for p in concentration_clip))
        self.kmeans_niter = kmeans_niter
        self.kmeans_nredo = kmeans_nredo
        self.proto_nce = ProtoNCE(temperature=1.0)
        # The harness seeds torch before building a method; K-means reuses that seed.
        self.seed = torch.initial_seed() % (2**31 - 1)
        # Per granularity: (prototypes / φ [K, D], assignments [N]); empty before the warm-up.
        self.prototypes: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.resolved_counts: list[int] = []
        self.concentration_means: list[float] = []

    def cluster_counts(self, num_images: int) -> list[int]:
        """K of each granularity for ``num_images`` images, cut to ``num_images``."""
        if self.images_per_cluster is not None:
            counts = [max(2, round(num_images / size)) for size in self.images_per_cluster]
        else:
            counts = list(self.num_clusters)
        return [min(count, num_images) for count in counts]

    def prepare_epoch(self, epoch: int, pair: DomainPair) -> None:
        """E-step: K-means of the key encoder's features of both domains at each granularity."""
        self.prototypes = []
        if epoch < self.warmup_epochs:
            return
        features = np.concatenate([embed_loader(self.key_encoder, self._loader(domain), self.device)
                                   for domain in (pair.query, pair.gallery)])
        self.resolved_counts = self.cluster_counts(len(features))
        if epoch == self.warmup_epochs:
            logger.info("pcl: K-means of both domains' %d images with K = %s", len(features),
                        self.resolved_counts)
        self.concentration_means = []
        for count in self.resolved_counts:
            centroids, assignments, _ = kmeans(features, count, seed=self.seed,
                                               niter=self.kmeans_niter, nredo=self.kmeans_nredo,
                                               max_points_per_centroid=1000)
            phi = scale_concentration(
                cluster_concentration(features, centroids, assignments, self.concentration_alpha),
                self.temperature, self.concentration_clip)
            prototypes = F.normalize(torch.from_numpy(centroids), dim=1)
            scaled = prototypes / torch.from_numpy(phi).float()[:, None]
            self.prototypes.append((scaled.to(self.device),
                                    torch.from_numpy(assignments).to(self.device)))
            self.concentration_means.append(float(phi.mean()))

    @property
    def temperature(self) -> float:
        return self.info_nce.temperature

    def extra_terms(self, epoch: int, queries: torch.Tensor,
                    image_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """``L_proto``: ProtoNCE averaged over the granularities (Eq. 11's 1/M Σ_m)."""
        if not self.prototypes:
            return {}
        losses = [self.proto_nce(queries, scaled_prototypes, assignments[image_ids])
                  for scaled_prototypes, assignments in self.prototypes]
        return {"L_proto": torch.stack(losses).mean()}

    def total_loss(self, epoch: int, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        loss = terms["L_instance"]
        if "L_proto" in terms:
            loss = loss + self.proto_weight * terms["L_proto"]
        return loss

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        counts = (f"images_per_cluster {list(self.images_per_cluster)} of both domains' images"
                  if self.images_per_cluster is not None
                  else f"num_clusters {list(self.num_clusters)}")
        description["num_clusters_resolved"] = list(self.resolved_counts)
        description["gap_decisions"].update({
            "clustering": f"joint K-means of both domains' key-encoder projections (eval view) "
                          f"before every epoch from epoch {self.warmup_epochs + 1}; {counts}, cut "
                          f"to the number of images; faiss, {self.kmeans_niter} iterations, "
                          f"{self.kmeans_nredo} restarts, at most 1000 points per centroid",
            "concentration": f"Eq. 12 with alpha {self.concentration_alpha}, distances to the "
                             f"unnormalised centroids, single-point clusters get the largest phi, "
                             f"clipped to percentiles {self.concentration_clip}, mean scaled to "
                             f"tau {self.temperature}",
            "proto_negatives": "every prototype of the granularity (PCL samples r negative "
                               "prototypes per batch; r >= K - 1 is this)",
            "loss": f"InfoNCE + {self.proto_weight} x mean over granularities of ProtoNCE",
        })
        return description
