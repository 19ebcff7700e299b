"""faiss K-means helper and the Elbow (Kneedle) estimate of the cluster count."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from u2cdr.models.clustering import (estimate_num_clusters, inertia_curve, kmeans,
                                     kneedle_knee)

CORNERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])


def blobs(centres: np.ndarray, per_blob: int, seed: int, scale: float = 1.0
          ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = np.concatenate([c + scale * rng.normal(size=(per_blob, centres.shape[1]))
                             for c in centres]).astype(np.float32)
    return points, np.repeat(np.arange(len(centres)), per_blob)


def test_kmeans_recovers_well_separated_blobs() -> None:
    points, truth = blobs(CORNERS, 30, seed=0)
    centroids, assignments, inertia = kmeans(points, 4, seed=0, nredo=3)
    assert centroids.shape == (4, 2) and centroids.dtype == np.float32
    assert assignments.shape == (120,) and assignments.dtype == np.int64
    assert adjusted_rand_score(truth, assignments) == 1.0
    # Each true centre has a centroid within 0.5 (blob means of 30 unit-variance points).
    gaps = np.linalg.norm(CORNERS[:, None, :] - centroids[None, :, :], axis=2)
    assert gaps.min(axis=1).max() < 0.5
    assert inertia > 0


def test_assignments_and_inertia_are_what_they_claim() -> None:
    points, _ = blobs(CORNERS, 10, seed=1, scale=3.0)
    centroids, assignments, inertia = kmeans(points, 3, seed=0)
    squared = ((points[:, None, :].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(2)
    np.testing.assert_array_equal(assignments, squared.argmin(axis=1))
    assert inertia == pytest.approx(squared.min(axis=1).sum(), rel=1e-9)


def test_spherical_centroids_are_unit_vectors_and_assign_by_inner_product() -> None:
    points, _ = blobs(CORNERS + 1.0, 10, seed=2)
    centroids, assignments, _ = kmeans(points, 4, seed=0, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(assignments, (points @ centroids.T).argmax(axis=1))


def test_kmeans_is_deterministic_for_a_seed() -> None:
    points, _ = blobs(CORNERS, 25, seed=3, scale=4.0)
    first = kmeans(points, 5, seed=11)
    second = kmeans(points, 5, seed=11)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]


def test_subsampling_still_assigns_every_point() -> None:
    points, truth = blobs(CORNERS, 50, seed=4)
    _, assignments, _ = kmeans(points, 4, seed=0, nredo=3, max_points_per_centroid=10)
    assert assignments.shape == (200,)
    assert adjusted_rand_score(truth, assignments) == 1.0


def test_kneedle_by_hand() -> None:
    # x = 2..6 scaled to 0, .25, .5, .75, 1; y = 100, 40, 15, 12, 10 scaled to
    # 1, .333, .056, .022, 0. The chord is 1 - x = 1, .75, .5, .25, 0; chord - y =
    # 0, .417, .444, .228, 0 -> the knee is the third point (k = 4).
    assert kneedle_knee(np.arange(2, 7), np.array([100.0, 40.0, 15.0, 12.0, 10.0])) == 2
    # A sharper drop at the second point moves the knee there: y = 100, 10, 8, 6, 4 ->
    # scaled 1, .0625, .0417, .0208, 0; chord - y = 0, .6875, .4583, .2292, 0.
    assert kneedle_knee(np.arange(2, 7), np.array([100.0, 10.0, 8.0, 6.0, 4.0])) == 1
    # Concave (every point above the chord) or flat curves have no knee: position 0.
    assert kneedle_knee(np.arange(3), np.array([10.0, 9.0, 0.0])) == 0
    assert kneedle_knee(np.arange(3), np.array([5.0, 5.0, 5.0])) == 0


@pytest.mark.parametrize("centres, expected", [
    (CORNERS, 4),
    (np.array([[0.0, 0.0], [12.0, 0.0], [6.0, 10.0]]), 3),
    (np.array([[0.0, 0.0], [10.0, 3.0], [20.0, -2.0], [5.0, 14.0], [-8.0, 9.0], [16.0, 13.0]]), 6),
])
def test_elbow_finds_the_number_of_blobs(centres: np.ndarray, expected: int) -> None:
    # nredo=5: a K-means local minimum at the true k (likely with 6 blobs and one run) would
    # flatten the curve there and move the knee; the Elbow can only be as good as the curve.
    points, _ = blobs(centres, 25, seed=5, scale=0.8)
    assert estimate_num_clusters(points, k_min=2, k_max=10, seed=0, nredo=5) == expected


def test_inertia_curve_decreases_on_blobs() -> None:
    points, _ = blobs(CORNERS, 20, seed=6)
    curve = inertia_curve(points, [2, 3, 4, 5], seed=0, nredo=2)
    assert curve.shape == (4,) and (np.diff(curve) < 0).all()
    assert curve[2] == pytest.approx(kmeans(points, 4, seed=0, nredo=2)[2])


def test_elbow_is_deterministic_and_respects_the_tried_range() -> None:
    points, _ = blobs(CORNERS, 20, seed=7, scale=3.0)
    first = estimate_num_clusters(points, k_min=3, k_max=9, k_step=2, seed=1)
    assert first in (3, 5, 7, 9)
    assert first == estimate_num_clusters(points, k_min=3, k_max=9, k_step=2, seed=1)


@pytest.mark.parametrize("call, message", [
    (lambda p: kmeans(p, 0, seed=0), r"k must be an integer between 1 and 8, got 0"),
    (lambda p: kmeans(p, 9, seed=0), r"k must be an integer between 1 and 8, got 9"),
    (lambda p: kmeans(p, 2, seed=-1), r"seed must be an integer"),
    (lambda p: kmeans(p[0], 2, seed=0), r"features must be a non-empty 2-D array"),
    (lambda p: kmeans(np.full((4, 2), np.nan), 2, seed=0), r"features contain NaN"),
    (lambda p: estimate_num_clusters(p, seed=0, criterion="silhouette"),
     r"criterion='silhouette' is not supported; valid choices: 'kneedle'"),
    (lambda p: estimate_num_clusters(p, k_min=5, k_max=3, seed=0),
     r"k_max must be an integer between 5 and 8, got 3"),
    (lambda p: estimate_num_clusters(p, k_min=2, k_max=3, seed=0),
     r"needs at least 3 cluster counts, got \[2, 3\]"),
    (lambda p: kneedle_knee(np.array([3, 2, 1]), np.array([1.0, 2.0, 3.0])),
     r"xs must be strictly increasing"),
    (lambda p: kneedle_knee(np.array([1, 2]), np.array([1.0, 2.0])), r"at least 3 points"),
])
def test_bad_arguments_are_named(call, message: str) -> None:
    points = np.arange(16, dtype=np.float32).reshape(8, 2)
    with pytest.raises(ValueError, match=message):
        call(points)
