"""UEM's unified prototypical structure (Eqs. 7–9): per-domain prototypes made cross-domain.

Each domain's memory bank is clustered on its own (K-means, cluster count by the Elbow method,
Eq. 7). The two prototype sets live in different parts of the feature space, so B's prototypes
are first moved into A's space by the difference of the bank means (Eq. 8), paired one-to-one
with A's by the Hungarian algorithm on Euclidean distances, and a pair is merged only when it is
closer than any two prototypes inside either domain (Eq. 9). The merged set ``P^{A'}`` holds
A's unmatched prototypes, B's unmatched translated prototypes and the average of every merged
pair, so both domains see one set of semantic anchors even when their label spaces differ.

Because the translation is one constant shift, ``d(p^A_c, p^B_{c'} + Δ) = d(p^A_c − Δ, p^B_{c'})``:
the matching and the merge decisions seen from B are the same as from A, and ``P^{B'}`` is
``P^{A'}`` shifted by ``−Δ``. ``unify_prototypes`` computes both sides from one matching.

Ordering of the merged sets (fixed so that indices are stable and testable): ``P^{A'}`` starts
with A's ``Ĉ_A`` slots in A's cluster order (a merged slot holds the pair's average) and then
lists B's unmerged translated prototypes in B's cluster order; ``P^{B'}`` mirrors it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from u2cdr.models.clustering import estimate_num_clusters, kmeans
from u2cdr.models.cluster_count import resolve_num_clusters


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [K, D] array, got shape {matrix.shape}")
    return matrix


def pairwise_euclidean(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``[N, M]`` Euclidean distances (float64, exact enough for the merge test)."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    squared = ((first ** 2).sum(1)[:, None] + (second ** 2).sum(1)[None, :]
               - 2.0 * first @ second.T)
    return np.sqrt(np.maximum(squared, 0.0))


def translate_prototypes(prototypes: np.ndarray, source_mean: np.ndarray,
                         target_mean: np.ndarray) -> np.ndarray:
    """Eq. 8: ``p^{S→T}_c = p^S_c + (M̄_T − M̄_S)`` for every row of ``prototypes`` ``[K, D]``."""
    return np.asarray(prototypes, dtype=np.float64) + (np.asarray(target_mean, dtype=np.float64)
                                                       - np.asarray(source_mean, dtype=np.float64))


MERGE_THRESHOLDS = ("global", "local")


def nearest_prototype_gaps(prototypes: np.ndarray) -> np.ndarray:
    """``[K]`` each prototype's distance to its nearest other prototype of the same domain.

    ``inf`` for a lone prototype (nothing limits it), as ``min_inter_prototype_distance``.
    """
    prototypes = _as_matrix(prototypes, "prototypes")
    distances = pairwise_euclidean(prototypes, prototypes)
    np.fill_diagonal(distances, np.inf)
    return distances.min(1)


def min_inter_prototype_distance(prototypes: np.ndarray) -> float:
    """``min_{i≠j} d(p_i, p_j)`` inside one domain; ``inf`` for a single prototype.

    With one prototype the minimum over an empty set is taken as +∞, so that domain puts no
    limit on Eq. 9 and the other domain's gap decides.
    """
    return float(nearest_prototype_gaps(prototypes).min())


def match_prototypes(prototypes: np.ndarray, translated_other: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian matching of ``prototypes`` ``[K_A, D]`` to ``translated_other`` ``[K_B, D]``.

    One-to-one assignment minimising the summed Euclidean distance (scipy's
    ``linear_sum_assignment``; rectangular when ``K_A ≠ K_B``: ``min(K_A, K_B)`` pairs).

    Returns:
        ``(rows [P], cols [P], distances [P])``: pair k matches ``prototypes[rows[k]]`` with
        ``translated_other[cols[k]]`` at Euclidean distance ``distances[k]``; rows ascending.
    """
    cost = pairwise_euclidean(_as_matrix(prototypes, "prototypes"),
                              _as_matrix(translated_other, "translated_other"))
    rows, cols = linear_sum_assignment(cost)
    return rows.astype(np.int64), cols.astype(np.int64), cost[rows, cols]


@dataclass(frozen=True)
class UnifiedPrototypes:
    """The merged prototype sets of both domains (Eq. 9) and where each cluster went.

    Attributes:
        prototypes_a, prototypes_b: ``[K_A, D]``, ``[K_B, D]`` the domains' own prototypes.
        shift: ``[D]`` ``M̄_A − M̄_B``, the Eq. 8 translation from B to A.
        merged_pairs: ``[C⊕, 2]`` (A cluster, B cluster) of every merged pair.
        threshold: Eq. 9's right-hand side (times ``merge_scale``), the smallest gap inside
            either domain; with ``merge_threshold='local'`` it is recorded but not used.
        pair_thresholds: ``[min(K_A, K_B)]`` the bound each Hungarian pair (rows ascending)
            was tested against: ``threshold`` for every pair ('global'), or the pair's own
            members' nearest same-domain gaps ('local').
        merged_a: ``[K̃, D]`` ``P^{A'}`` in A's space; ``merged_b``: ``[K̃, D]`` ``P^{B'}``.
        a_in_a, b_in_a: ``[K_A]`` / ``[K_B]`` index of each A / B cluster in ``P^{A'}``.
        b_in_b, a_in_b: ``[K_B]`` / ``[K_A]`` index of each B / A cluster in ``P^{B'}``.
        is_merged_a, is_merged_b: ``[K_A]`` / ``[K_B]`` whether a cluster was merged.
    """

    prototypes_a: np.ndarray
    prototypes_b: np.ndarray
    shift: np.ndarray
    merged_pairs: np.ndarray
    threshold: float
    pair_thresholds: np.ndarray
    merged_a: np.ndarray
    merged_b: np.ndarray
    a_in_a: np.ndarray
    b_in_a: np.ndarray
    b_in_b: np.ndarray
    a_in_b: np.ndarray
    is_merged_a: np.ndarray
    is_merged_b: np.ndarray

    @property
    def num_merged(self) -> int:
        """``C⊕``, the number of merged pairs."""
        return int(len(self.merged_pairs))

    def side(self, domain: str) -> "PrototypeView":
        """The structure as seen from ``domain`` ('A' or 'B'): own set, merged set, maps."""
        if domain == "A":
            return PrototypeView(self.prototypes_a, self.merged_a, self.a_in_a, self.a_in_b,
                                 self.merged_b, self.is_merged_a)
        if domain == "B":
            return PrototypeView(self.prototypes_b, self.merged_b, self.b_in_b, self.b_in_a,
                                 self.merged_a, self.is_merged_b)
        raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")


@dataclass(frozen=True)
class PrototypeView:
    """One domain's view of ``UnifiedPrototypes`` (X = this domain, Y = the other).

    Attributes:
        own: ``[K_X, D]`` ``P^X``.  merged: ``[K̃, D]`` ``P^{X'}``.
        own_in_merged: ``[K_X]`` index of each X cluster in ``P^{X'}``.
        own_in_other_merged: ``[K_X]`` index in ``P^{Y'}`` of each X cluster translated to Y
            and merged (``p̃^X_c`` of SN²M step 4).
        other_merged: ``[K̃, D]`` ``P^{Y'}``.  is_merged: ``[K_X]``.
    """

    own: np.ndarray
    merged: np.ndarray
    own_in_merged: np.ndarray
    own_in_other_merged: np.ndarray
    other_merged: np.ndarray
    is_merged: np.ndarray


def unify_prototypes(prototypes_a: np.ndarray, prototypes_b: np.ndarray, mean_a: np.ndarray,
                     mean_b: np.ndarray, *, merge: bool = True, merge_scale: float = 1.0,
                     merge_threshold: str = "global") -> UnifiedPrototypes:
    """Eqs. 8–9: translate, Hungarian-match, merge; build ``P^{A'}`` and ``P^{B'}``.

    Args:
        prototypes_a, prototypes_b: ``[K_A, D]``, ``[K_B, D]`` raw K-means centroids.
        mean_a, mean_b: ``[D]`` bank means ``M̄_A``, ``M̄_B``.
        merge: False keeps every pair apart (``C⊕ = 0``; the sets are plain unions).
        merge_scale: multiplies Eq. 9's threshold; 1.0 is the paper's condition.
        merge_threshold: 'global' is Eq. 9 as printed: a matched pair (c, c') is merged iff
            ``d(p^A_c, p^{B→A}_{c'}) < merge_scale · min(min_{i≠j} d(p^A_i, p^A_j),
            min_{i≠j} d(p^B_i, p^B_j))``, one bound for all pairs, the smallest gap anywhere.
            'local' (not the paper) bounds each pair by its own members' nearest neighbours:
            ``< merge_scale · min(min_{j≠c} d(p^A_c, p^A_j), min_{j≠c'} d(p^B_{c'}, p^B_j))``,
            "the partners are closer to each other than either is to any prototype of its own
            domain". Why it exists: with more clusters than classes the global minimum is the
            gap between two sub-clusters of one class, which no cross-domain pair undercuts —
            on the supervised oracle's digits features (shared mAP 99) Eq. 9 as printed merged
            nothing for k = 10…300 (benchmarks/analysis/open_set_rules.py).

    Returns:
        ``UnifiedPrototypes``; a matched pair is merged iff its distance is *strictly* below
        its bound.
    """
    prototypes_a = _as_matrix(prototypes_a, "prototypes_a")
    prototypes_b = _as_matrix(prototypes_b, "prototypes_b")
    if prototypes_a.shape[1] != prototypes_b.shape[1]:
        raise ValueError(f"prototypes_a have {prototypes_a.shape[1]} dimensions but prototypes_b "
                         f"{prototypes_b.shape[1]}")
    if merge_scale <= 0:
        raise ValueError(f"merge_scale must be positive, got {merge_scale}")
    if merge_threshold not in MERGE_THRESHOLDS:
        raise ValueError(f"merge_threshold must be one of {', '.join(MERGE_THRESHOLDS)}, "
                         f"got {merge_threshold!r}")
    shift = np.asarray(mean_a, dtype=np.float64) - np.asarray(mean_b, dtype=np.float64)
    b_to_a = prototypes_b + shift
    threshold = merge_scale * min(min_inter_prototype_distance(prototypes_a),
                                  min_inter_prototype_distance(prototypes_b))
    rows, cols, distances = match_prototypes(prototypes_a, b_to_a)
    if merge_threshold == "global":
        pair_thresholds = np.full(len(rows), threshold)
    else:
        pair_thresholds = merge_scale * np.minimum(nearest_prototype_gaps(prototypes_a)[rows],
                                                   nearest_prototype_gaps(prototypes_b)[cols])
    keep = distances < pair_thresholds if merge else np.zeros(len(rows), dtype=bool)
    merged_pairs = np.stack([rows[keep], cols[keep]], axis=1).reshape(-1, 2)

    num_a, num_b = len(prototypes_a), len(prototypes_b)
    is_merged_a = np.zeros(num_a, dtype=bool)
    is_merged_b = np.zeros(num_b, dtype=bool)
    is_merged_a[merged_pairs[:, 0]] = True
    is_merged_b[merged_pairs[:, 1]] = True

    # P^{A'}: A's slots (merged ones averaged with their partner), then B's unmerged translated.
    merged_a = np.concatenate([prototypes_a, b_to_a[~is_merged_b]])
    merged_a[merged_pairs[:, 0]] = 0.5 * (prototypes_a[merged_pairs[:, 0]]
                                          + b_to_a[merged_pairs[:, 1]])
    a_in_a = np.arange(num_a)
    b_in_a = np.empty(num_b, dtype=np.int64)
    b_in_a[~is_merged_b] = num_a + np.arange(int((~is_merged_b).sum()))
    b_in_a[merged_pairs[:, 1]] = merged_pairs[:, 0]

    # P^{B'} mirrors it in B's space (the same pairs: a shift preserves distances).
    a_to_b = prototypes_a - shift
    merged_b = np.concatenate([prototypes_b, a_to_b[~is_merged_a]])
    merged_b[merged_pairs[:, 1]] = 0.5 * (prototypes_b[merged_pairs[:, 1]]
                                          + a_to_b[merged_pairs[:, 0]])
    b_in_b = np.arange(num_b)
    a_in_b = np.empty(num_a, dtype=np.int64)
    a_in_b[~is_merged_a] = num_b + np.arange(int((~is_merged_a).sum()))
    a_in_b[merged_pairs[:, 0]] = merged_pairs[:, 1]

    return UnifiedPrototypes(prototypes_a, prototypes_b, shift, merged_pairs.astype(np.int64),
                             float(threshold), pair_thresholds, merged_a, merged_b, a_in_a,
                             b_in_a, b_in_b, a_in_b, is_merged_a, is_merged_b)


@dataclass(frozen=True)
class ElbowSettings:
    """How the Elbow method searches the cluster count (UEM leaves all of it open [GAP]).

    Attributes:
        k_min, k_max, k_step: the tried counts ``k_min, k_min + k_step, …, ≤ k_max``; ``k_max``
            None means the estimator's default ``min(N, 100)``; it is capped at N.
        criterion: the knee rule of ``estimate_num_clusters`` ('kneedle').
        niter: Lloyd iterations per K-means run of the curve.
    """

    k_min: int = 2
    k_max: int | None = None
    k_step: int = 1
    criterion: str = "kneedle"
    niter: int = 20


def fit_elbow_range(elbow: ElbowSettings, num_points: int) -> tuple[int, int, int]:
    """``(k_min, k_max, k_step)`` of ``elbow`` shrunk to a domain of ``num_points`` points.

    ``k_max`` is capped at N (None: ``min(N, 100)``); when the range then holds fewer than the
    3 counts a knee needs, ``k_min`` and then ``k_step`` shrink, so a tiny domain (a test, a
    small class subset) still gets an estimate instead of an error.
    """
    if num_points < 3:
        raise ValueError(f"the Elbow method needs at least 3 points, got {num_points}")
    k_max = min(100 if elbow.k_max is None else elbow.k_max, num_points)
    k_min = max(1, min(elbow.k_min, k_max - 2 * elbow.k_step))
    k_step = elbow.k_step if k_min + 2 * elbow.k_step <= k_max else max(1, (k_max - k_min) // 2)
    return k_min, k_max, k_step


def estimate_cluster_count(features: np.ndarray, setting: str | int, *, seed: int,
                           elbow: ElbowSettings = ElbowSettings(),
                           labels_for_oracle: np.ndarray | None = None) -> int:
    """Ĉ of one domain: the Elbow estimate (UEM), a fixed count, or the label oracle.

    'elbow' runs the shared Kneedle estimator over ``elbow``'s range; an int and 'oracle' go
    through the shared ``resolve_num_clusters`` (the oracle counts distinct labels and must be
    flagged by the caller).
    """
    if setting == "elbow":
        points = np.ascontiguousarray(features, dtype=np.float32)
        k_min, k_max, k_step = fit_elbow_range(elbow, len(points))
        return int(estimate_num_clusters(points, k_min=k_min, k_max=k_max, seed=seed,
                                         criterion=elbow.criterion, k_step=k_step,
                                         niter=elbow.niter))
    return resolve_num_clusters(setting, features, labels_for_oracle, seed=seed)


@dataclass(frozen=True)
class DomainPrototypes:
    """One domain's K-means result: ``centroids [K, D]`` and ``assignments [N]``."""

    centroids: np.ndarray
    assignments: np.ndarray

    @property
    def num_clusters(self) -> int:
        return int(len(self.centroids))


def cluster_domain(features: np.ndarray, num_clusters: int, *, seed: int, niter: int = 20,
                   nredo: int = 1) -> DomainPrototypes:
    """Eq. 7's K-means on one domain's bank ``[N, D]`` (raw Euclidean centroids).

    The centroids stay un-normalised: Eq. 9's merge test, SEL's distances and SN²M's δ
    searches use them as they are (uem.md §8.4); callers normalise a copy for dot-product
    logits.
    """
    centroids, assignments, _ = kmeans(features, int(num_clusters), seed=seed, niter=niter,
                                       nredo=nredo)
    return DomainPrototypes(centroids.astype(np.float64), assignments)
