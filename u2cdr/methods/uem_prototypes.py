"""UEM's per-epoch prototype bookkeeping: cluster counts, K-means on the banks, merging.

Every (re-)clustering of UEM (Figure 1: "Update → K-Means → Merge", in both stages) goes
through ``PrototypeBuilder.build``: the Elbow count per domain (cached for ``elbow_every``
epochs, because the Elbow curve is many K-means runs), K-means on each memory bank (Eq. 7),
and the unified structure of Eqs. 8–9. ``EpochPrototypes`` turns the result into the tensors a
training step needs for each domain.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import faiss
import numpy as np
import torch
import torch.nn.functional as F

from u2cdr.models.prototypes import (DomainPrototypes, ElbowSettings, UnifiedPrototypes,
                                     cluster_domain, estimate_cluster_count, unify_prototypes)

DOMAINS = ("A", "B")


@contextmanager
def faiss_threads(count: int | None) -> Iterator[None]:
    """Run faiss (K-means, Elbow) with ``count`` OpenMP threads, then restore the setting.

    On a shared CPU, OpenMP threads that spin-wait for busy cores made one Elbow curve ten
    times slower with 2 threads than with 1 (measured: 8.5 s vs 0.85 s on 5,000 points);
    None leaves faiss's setting alone.
    """
    if count is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class ClusterCountCache:
    """The last Elbow estimate of each domain and the epoch it was made at (checkpointed).

    Kept in the checkpoint so that a resumed run reuses the estimate an uninterrupted run
    would have reused.
    """

    def __init__(self) -> None:
        self.counts = {domain: 0 for domain in DOMAINS}
        self.epoch = -1

    def stale(self, epoch: int, every: int) -> bool:
        return self.epoch < 0 or epoch - self.epoch >= every

    def state_dict(self) -> dict[str, Any]:
        return {"counts": torch.tensor([self.counts[d] for d in DOMAINS]), "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.counts = dict(zip(DOMAINS, (int(c) for c in state["counts"].tolist())))
        self.epoch = int(state["epoch"])


@dataclass
class DomainStepPrototypes:
    """Tensors one domain's losses need for one epoch (X = this domain, Y = the other).

    Attributes:
        assignments: ``[N_X]`` K-means cluster of every bank entry (PNCE targets).
        own: ``[K_X, D]`` raw ``P^X``.  own_in_merged: ``[K_X]`` index in the training set.
        training_raw / training_logits: the IDSE prototype set (``P^{X'}``, or ``P^X`` when
            merging is off), raw for distances and as used in logits.
        own_in_other_merged: ``[K_X]`` index of ``p̃^X_c`` in ``P^{Y'}``.
        other_merged_raw / other_merged_logits: ``[K̃, D]`` ``P^{Y'}``.
    """

    assignments: torch.Tensor
    own: torch.Tensor
    own_in_merged: torch.Tensor
    training_raw: torch.Tensor
    training_logits: torch.Tensor
    own_in_other_merged: torch.Tensor
    other_merged_raw: torch.Tensor
    other_merged_logits: torch.Tensor

    def targets(self, indices: torch.Tensor) -> torch.Tensor:
        """PNCE positives of bank entries ``indices``: their cluster's slot in the set."""
        return self.own_in_merged[self.assignments[indices.to(self.assignments.device)]]


@dataclass
class EpochPrototypes:
    """One epoch's clustering of both domains and its unified structure."""

    structure: UnifiedPrototypes
    clusters: dict[str, DomainPrototypes]
    domains: dict[str, DomainStepPrototypes]

    def summary(self) -> dict[str, float]:
        """Plain numbers for the epoch log: cluster counts and merged pairs."""
        return {"K_A": float(self.clusters["A"].num_clusters),
                "K_B": float(self.clusters["B"].num_clusters),
                "merged": float(self.structure.num_merged)}


class PrototypeBuilder:
    """Clusters both banks and unifies them (Eqs. 7–9), once per call.

    Args:
        num_clusters: 'elbow' (UEM), an int, or 'oracle' (labels needed; flagged).
        elbow: the Elbow search range.
        elbow_every: re-estimate the counts every this many epochs (1 = every clustering).
        merge: merge prototypes (False: the "w/o P.M." ablation; IDSE then uses each
            domain's own prototypes only).
        merge_scale: Eq. 9 threshold multiplier (1.0 = the paper).
        merge_threshold: 'global' (Eq. 9 as printed) or 'local' (each pair against its own
            members' nearest same-domain gaps; see ``unify_prototypes``).
        normalize_logit_prototypes: use L2-normalised centroids in dot-product logits.
        kmeans_niter: Lloyd iterations of the per-epoch K-means.
        seed: base K-means seed; epoch ``e`` uses ``seed + e``.
        threads: faiss OpenMP threads while clustering (None: faiss's setting).
    """

    def __init__(self, *, num_clusters: str | int, elbow: ElbowSettings, elbow_every: int,
                 merge: bool, merge_scale: float, normalize_logit_prototypes: bool,
                 kmeans_niter: int, seed: int, threads: int | None = 1,
                 merge_threshold: str = "global") -> None:
        self.num_clusters = num_clusters
        self.elbow = elbow
        self.elbow_every = elbow_every
        self.merge = merge
        self.merge_scale = merge_scale
        self.merge_threshold = merge_threshold
        self.normalize_logit_prototypes = normalize_logit_prototypes
        self.kmeans_niter = kmeans_niter
        self.seed = seed
        self.threads = threads
        self.counts = ClusterCountCache()
        self.seconds = 0.0  # wall time spent here (Elbow, K-means, matching), for perf reports

    def build(self, banks: Mapping[str, torch.Tensor], epoch: int,
              labels_for_oracle: Mapping[str, np.ndarray] | None = None) -> EpochPrototypes:
        """Prototypes of ``banks`` (``{'A': [N_A, D], 'B': [N_B, D]}``) at global ``epoch``."""
        started = time.perf_counter()
        with faiss_threads(self.threads):
            prototypes = self._build(banks, epoch, labels_for_oracle)
        self.seconds += time.perf_counter() - started
        return prototypes

    def _build(self, banks: Mapping[str, torch.Tensor], epoch: int,
               labels_for_oracle: Mapping[str, np.ndarray] | None) -> EpochPrototypes:
        device = banks["A"].device
        features = {d: banks[d].detach().cpu().numpy().astype(np.float32) for d in DOMAINS}
        if self.counts.stale(epoch, self.elbow_every):
            for domain in DOMAINS:
                labels = None if labels_for_oracle is None else labels_for_oracle[domain]
                self.counts.counts[domain] = estimate_cluster_count(
                    features[domain], self.num_clusters, seed=self.seed + epoch, elbow=self.elbow,
                    labels_for_oracle=labels)
            self.counts.epoch = epoch
        clusters = {d: cluster_domain(features[d], self.counts.counts[d], seed=self.seed + epoch,
                                      niter=self.kmeans_niter) for d in DOMAINS}
        structure = unify_prototypes(clusters["A"].centroids, clusters["B"].centroids,
                                     features["A"].mean(0), features["B"].mean(0),
                                     merge=self.merge, merge_scale=self.merge_scale,
                                     merge_threshold=self.merge_threshold)
        domains = {d: self._domain_tensors(structure, clusters[d], d, device) for d in DOMAINS}
        return EpochPrototypes(structure, clusters, domains)

    def _logits(self, prototypes: torch.Tensor) -> torch.Tensor:
        return F.normalize(prototypes, dim=1) if self.normalize_logit_prototypes else prototypes

    def _domain_tensors(self, structure: UnifiedPrototypes, clusters: DomainPrototypes,
                        domain: str, device: torch.device) -> DomainStepPrototypes:
        view = structure.side(domain)

        def tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(np.asarray(array), dtype=dtype, device=device)

        own = tensor(view.own)
        if self.merge:
            training_raw, own_in_merged = tensor(view.merged), tensor(view.own_in_merged, torch.long)
        else:
            training_raw, own_in_merged = own, torch.arange(len(own), device=device)
        other_merged = tensor(view.other_merged)
        return DomainStepPrototypes(tensor(clusters.assignments, torch.long), own, own_in_merged,
                                    training_raw, self._logits(training_raw),
                                    tensor(view.own_in_other_merged, torch.long), other_merged,
                                    self._logits(other_merged))
