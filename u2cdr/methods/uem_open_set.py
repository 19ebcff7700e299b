"""UEM's own private-query detector (App. B.1, Eqs. 25–27).

After training, both domains' retrieval features are clustered again and unified exactly as in
training (Eqs. 8–9). A query-domain cluster that found no partner in the gallery domain is a
query-private category; a merged cluster carries the largest cross-domain δ-distance between
its two member sets as the farthest a shared query may sit from the gallery:

    D_c = max_{x ∈ X^A_c, y ∈ X^B_{c'}} δ(x, y)                                   (Eqs. 25–26)
    private(q) ⇔ nearest A-prototype of q is unmerged,
                 or min_j δ(q, g_j) > D_{c(q)}                                    (Eq. 27)

Cluster membership is the plain Euclidean nearest prototype (faiss's K-means assignment), as
Eq. 26 defines it; δ(u, v) = (1 − cos(u, v))·‖u − v‖ is SN²M's search distance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from u2cdr.models.prototypes import (ElbowSettings, cluster_domain, estimate_cluster_count,
                                     unify_prototypes)


def product_distance_np(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``[N, M]`` δ(u, v) = (1 − cos(u, v))·‖u − v‖ in float64 (numpy twin of SN²M's δ)."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    first_norms = np.linalg.norm(first, axis=1)
    second_norms = np.linalg.norm(second, axis=1)
    inner = first @ second.T
    cosine = inner / np.maximum(first_norms[:, None] * second_norms[None, :], 1e-12)
    squared = first_norms[:, None] ** 2 + second_norms[None, :] ** 2 - 2.0 * inner
    return (1.0 - cosine) * np.sqrt(np.maximum(squared, 0.0))


def nearest_product_distance(queries: np.ndarray, gallery: np.ndarray,
                             chunk_size: int = 1024) -> np.ndarray:
    """Eq. 27's ``D^{A→B}_i = min_j δ(q_i, g_j)`` for every query, ``[N_q]``."""
    return np.concatenate([product_distance_np(queries[start:start + chunk_size], gallery).min(1)
                           for start in range(0, len(queries), chunk_size)])


def max_product_distance(first: np.ndarray, second: np.ndarray, chunk_size: int = 1024) -> float:
    """Eq. 25's ``max δ(x, y)`` over ``x ∈ first``, ``y ∈ second`` (−inf if either is empty)."""
    if len(first) == 0 or len(second) == 0:
        return float("-inf")
    return float(max(product_distance_np(first[start:start + chunk_size], second).max()
                     for start in range(0, len(first), chunk_size)))


def private_queries(query: np.ndarray, gallery: np.ndarray, query_assignments: np.ndarray,
                    gallery_assignments: np.ndarray, merged_pairs: np.ndarray,
                    num_query_clusters: int, chunk_size: int = 1024
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 25–27 given the clusters: ``(private [N_q] bool, D_c per query cluster [K_A])``.

    ``D_c`` is −inf for a query cluster that was not merged (its queries are private anyway)
    and for a merged pair whose gallery cluster has no member. Because every query is itself
    a member of its cluster, ``min_j δ(q, g_j) ≤ D_c`` whenever the partner gallery cluster is
    non-empty: with the transductive protocol (detection clusters the very queries it judges)
    the distance test can only fire for an empty gallery cluster, and the unmerged-prototype
    test decides the rest.
    """
    thresholds = np.full(num_query_clusters, -np.inf)
    for query_cluster, gallery_cluster in merged_pairs:
        thresholds[query_cluster] = max_product_distance(
            query[query_assignments == query_cluster],
            gallery[gallery_assignments == gallery_cluster], chunk_size)
    merged = np.zeros(num_query_clusters, dtype=bool)
    merged[np.asarray(merged_pairs, dtype=np.int64).reshape(-1, 2)[:, 0]] = True
    unmerged = ~merged[query_assignments]
    too_far = nearest_product_distance(query, gallery, chunk_size) > thresholds[query_assignments]
    return unmerged | too_far, thresholds


@dataclass
class OpenSetReport:
    """What the detector found, for ``describe()``: counts, merges and flag rates."""

    num_query_clusters: int
    num_gallery_clusters: int
    num_merged: int
    flagged_unmerged: int
    flagged_by_distance: int
    thresholds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"num_query_clusters": self.num_query_clusters,
                "num_gallery_clusters": self.num_gallery_clusters,
                "num_merged": self.num_merged, "flagged_unmerged": self.flagged_unmerged,
                "flagged_by_distance": self.flagged_by_distance,
                "merged_cluster_thresholds": [round(value, 6) for value in self.thresholds]}


def detect_private_uem(query_features: np.ndarray, gallery_features: np.ndarray, *,
                       num_clusters: str | int = "elbow", elbow: ElbowSettings = ElbowSettings(),
                       seed: int = 0, merge_scale: float = 1.0, merge_threshold: str = "global",
                       chunk_size: int = 1024) -> tuple[np.ndarray, OpenSetReport]:
    """App. B.1: flag query-private queries from merged cross-domain prototypes.

    Args:
        query_features: ``[N_q, D]`` retrieval features of the query domain.
        gallery_features: ``[N_g, D]`` retrieval features of the gallery domain.
        num_clusters: 'elbow' (per domain, as in training) or a fixed count for both.
        elbow: the Elbow search range.
        seed: K-means seed.
        merge_scale: Eq. 9 threshold multiplier (1.0 = the paper).
        merge_threshold: 'global' (Eq. 9 as printed) or 'local' (``unify_prototypes``).
        chunk_size: rows per block of the δ computations (memory only).

    Returns:
        ``(private [N_q] bool, report)``.
    """
    query = np.ascontiguousarray(query_features, dtype=np.float32)
    gallery = np.ascontiguousarray(gallery_features, dtype=np.float32)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query_features {query.shape} and gallery_features {gallery.shape} "
                         "must be [N, D] arrays of the same width")
    counts = [estimate_cluster_count(features, num_clusters, seed=seed, elbow=elbow)
              for features in (query, gallery)]
    query_clusters = cluster_domain(query, counts[0], seed=seed)
    gallery_clusters = cluster_domain(gallery, counts[1], seed=seed)
    structure = unify_prototypes(query_clusters.centroids, gallery_clusters.centroids,
                                 query.mean(0), gallery.mean(0), merge=True,
                                 merge_scale=merge_scale, merge_threshold=merge_threshold)
    private, thresholds = private_queries(query, gallery, query_clusters.assignments,
                                          gallery_clusters.assignments, structure.merged_pairs,
                                          structure.prototypes_a.shape[0], chunk_size)
    unmerged = ~structure.is_merged_a[query_clusters.assignments]
    report = OpenSetReport(counts[0], counts[1], structure.num_merged, int(unmerged.sum()),
                           int((private & ~unmerged).sum()),
                           [float(thresholds[c]) for c, _ in structure.merged_pairs])
    return private, report
