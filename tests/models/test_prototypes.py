"""UEM's unified prototypes: Eq. 8 translation, Hungarian matching, Eq. 9 merging, Elbow counts."""
from __future__ import annotations

import math

import numpy as np
import pytest

from u2cdr.models.prototypes import (ElbowSettings, cluster_domain, estimate_cluster_count,
                                     match_prototypes, min_inter_prototype_distance,
                                     translate_prototypes, unify_prototypes)

# Domain A: three prototypes 10 apart. Domain B's bank mean sits at (5, 5) instead of A's (0, 0),
# so Eq. 8 moves B's prototypes by (-5, -5): (6, 5) -> (1, 0), (15, 6) -> (10, 1), (50, 50) -> (45, 45).
PROTOTYPES_A = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
PROTOTYPES_B = np.array([[6.0, 5.0], [15.0, 6.0], [50.0, 50.0]])
MEAN_A = np.array([0.0, 0.0])
MEAN_B = np.array([5.0, 5.0])


def test_translation_adds_the_difference_of_bank_means() -> None:
    translated = translate_prototypes(PROTOTYPES_B, MEAN_B, MEAN_A)
    np.testing.assert_allclose(translated, [[1.0, 0.0], [10.0, 1.0], [45.0, 45.0]])


def test_min_inter_prototype_distance_ignores_self_pairs() -> None:
    assert min_inter_prototype_distance(PROTOTYPES_A) == pytest.approx(10.0)
    assert min_inter_prototype_distance(PROTOTYPES_B) == pytest.approx(math.sqrt(82.0))
    assert min_inter_prototype_distance(np.array([[3.0, 4.0]])) == math.inf


def test_hungarian_is_one_to_one_where_greedy_nearest_is_not() -> None:
    # Both A prototypes have B's (1, 0) as nearest; the optimal assignment splits them.
    rows, cols, distances = match_prototypes(np.array([[0.0, 0.0], [2.0, 0.0]]),
                                             np.array([[1.0, 0.0], [5.0, 0.0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    np.testing.assert_allclose(distances, [1.0, 3.0])


def test_rectangular_matching_pairs_the_smaller_side_only() -> None:
    rows, cols, _ = match_prototypes(np.array([[0.0, 0.0], [9.0, 0.0]]),
                                     np.array([[8.0, 0.0], [0.5, 0.0], [30.0, 0.0]]))
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


def test_merge_condition_and_merged_sets_on_a_hand_case() -> None:
    unified = unify_prototypes(PROTOTYPES_A, PROTOTYPES_B, MEAN_A, MEAN_B)
    # Eq. 9 threshold: min(10, sqrt(82)) = 9.055; pairs (A0, B0) at 1 and (A1, B1) at 1 merge,
    # (A2, B2) at sqrt(45² + 35²) = 57 does not.
    assert unified.threshold == pytest.approx(math.sqrt(82.0))
    assert unified.merged_pairs.tolist() == [[0, 0], [1, 1]]
    np.testing.assert_allclose(unified.shift, [-5.0, -5.0])
    # P^{A'}: A's slots with merged averages, then B's unmerged translated prototype.
    np.testing.assert_allclose(unified.merged_a, [[0.5, 0.0], [10.0, 0.5], [0.0, 10.0], [45.0, 45.0]])
    assert unified.a_in_a.tolist() == [0, 1, 2] and unified.b_in_a.tolist() == [0, 1, 3]
    # P^{B'} is the same structure in B's space: A2 translated to B is (5, 15).
    np.testing.assert_allclose(unified.merged_b, [[5.5, 5.0], [15.0, 5.5], [50.0, 50.0], [5.0, 15.0]])
    assert unified.b_in_b.tolist() == [0, 1, 2] and unified.a_in_b.tolist() == [0, 1, 3]
    assert len(unified.merged_a) == 3 + 3 - unified.num_merged  # C̃ = Ĉ_A + Ĉ_B − C⊕
    assert unified.is_merged_a.tolist() == [True, True, False]
    view = unified.side("B")
    assert view.own_in_other_merged.tolist() == [0, 1, 3]  # B's clusters inside P^{A'}


def test_a_pair_exactly_at_the_threshold_is_not_merged() -> None:
    # Threshold = min intra-A gap = 2; (A0, B0) sit exactly 2 apart, so '<' keeps them apart.
    unified = unify_prototypes(np.array([[0.0, 0.0], [2.0, 0.0]]),
                               np.array([[0.0, 2.0], [10.0, 10.0]]), np.zeros(2), np.zeros(2))
    assert unified.threshold == pytest.approx(2.0)
    assert unified.num_merged == 0
    assert len(unified.merged_a) == 4


def test_merging_is_the_same_seen_from_either_domain() -> None:
    forward = unify_prototypes(PROTOTYPES_A, PROTOTYPES_B, MEAN_A, MEAN_B)
    backward = unify_prototypes(PROTOTYPES_B, PROTOTYPES_A, MEAN_B, MEAN_A)
    assert backward.merged_pairs[:, ::-1].tolist() == forward.merged_pairs.tolist()
    np.testing.assert_allclose(backward.merged_a[:3], forward.merged_b[:3])


def test_merge_off_keeps_the_plain_union() -> None:
    unified = unify_prototypes(PROTOTYPES_A, PROTOTYPES_B, MEAN_A, MEAN_B, merge=False)
    assert unified.num_merged == 0
    np.testing.assert_allclose(unified.merged_a[:3], PROTOTYPES_A)
    np.testing.assert_allclose(unified.merged_a[3:], [[1.0, 0.0], [10.0, 1.0], [45.0, 45.0]])
    assert unified.b_in_a.tolist() == [3, 4, 5]


def test_merge_scale_widens_the_threshold() -> None:
    unified = unify_prototypes(PROTOTYPES_A, PROTOTYPES_B, MEAN_A, MEAN_B, merge_scale=7.0)
    assert unified.num_merged == 3  # 57.0 < 7 × 9.055


def test_elbow_pipeline_finds_four_separated_blobs_and_kmeans_recovers_them() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 20.0]])
    points = np.concatenate([c + rng.normal(size=(40, 3)) for c in centres]).astype(np.float32)
    count = estimate_cluster_count(points, "elbow", seed=0, elbow=ElbowSettings(k_min=2, k_max=12))
    assert count == 4
    clusters = cluster_domain(points, count, seed=0)
    assert clusters.num_clusters == 4
    # Each blob of 40 points lands in one cluster of its own.
    assert sorted(np.bincount(clusters.assignments).tolist()) == [40, 40, 40, 40]
    assert all(len(set(clusters.assignments[i * 40:(i + 1) * 40].tolist())) == 1 for i in range(4))


def test_fixed_and_oracle_counts_pass_through_the_shared_resolver() -> None:
    points = np.zeros((10, 2), dtype=np.float32)
    assert estimate_cluster_count(points, 3, seed=0) == 3
    assert estimate_cluster_count(points, "oracle", seed=0,
                                  labels_for_oracle=np.array([0, 1, 1, 5] * 2 + [0, 0])) == 3
    with pytest.raises(ValueError, match="'elbo'"):
        estimate_cluster_count(points, "elbo", seed=0)


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="3 dimensions but prototypes_b 2"):
        unify_prototypes(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="merge_scale must be positive"):
        unify_prototypes(PROTOTYPES_A, PROTOTYPES_B, MEAN_A, MEAN_B, merge_scale=0.0)


def test_elbow_range_shrinks_to_small_domains_only() -> None:
    from u2cdr.models.prototypes import fit_elbow_range
    assert fit_elbow_range(ElbowSettings(100, 300, 25), 5000) == (100, 300, 25)
    assert fit_elbow_range(ElbowSettings(100, 300, 25), 40) == (1, 40, 19)
    assert fit_elbow_range(ElbowSettings(2, None, 1), 500) == (2, 100, 1)
    assert fit_elbow_range(ElbowSettings(10, 30, 5), 20) == (10, 20, 5)


def test_local_threshold_merges_a_pair_that_the_global_minimum_refuses() -> None:
    # A holds two sub-clusters of one class 1 apart (A0, A1) and a third prototype A2 at (0, 10);
    # B0 sits 3 from A2. Eq. 9 as printed bounds every pair by the smallest gap anywhere (1), so
    # nothing merges; the local reading bounds (A2, B0) by A2's nearest A gap (10) and B0's nearest
    # B gap (sqrt(30² + 13²) = 32.7), so it merges, while (A0, ·) and (A1, ·) stay bound by 1.
    prototypes_a = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 10.0]])
    prototypes_b = np.array([[0.0, 13.0], [30.0, 0.0], [0.0, -30.0]])
    zero = np.zeros(2)
    printed = unify_prototypes(prototypes_a, prototypes_b, zero, zero)
    local = unify_prototypes(prototypes_a, prototypes_b, zero, zero, merge_threshold="local")
    assert printed.num_merged == 0 and printed.threshold == pytest.approx(1.0)
    np.testing.assert_allclose(printed.pair_thresholds, [1.0, 1.0, 1.0])
    assert local.merged_pairs.tolist() == [[2, 0]]
    np.testing.assert_allclose(local.pair_thresholds[2], 10.0)
    np.testing.assert_allclose(local.pair_thresholds[:2], [1.0, 1.0])
    np.testing.assert_allclose(local.merged_a[2], [0.0, 11.5])
    with pytest.raises(ValueError, match="merge_threshold must be one of global, local"):
        unify_prototypes(prototypes_a, prototypes_b, zero, zero, merge_threshold="median")
