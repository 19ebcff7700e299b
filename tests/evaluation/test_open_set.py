"""The generic private-query rule (UEM App. B.2) on hand cases and synthetic domains."""
from __future__ import annotations

import numpy as np
import pytest

from u2cdr.evaluation import detect_private_generic
from u2cdr.evaluation.open_set import cluster_diameter
from u2cdr.evaluation.retrieval import nearest_gallery_distance


def test_cluster_diameter_by_hand() -> None:
    # (0,0), (3,0), (0,4): the largest gap is the 3-4-5 hypotenuse.
    triangle = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert cluster_diameter(triangle) == pytest.approx(5.0)
    assert cluster_diameter(triangle, chunk_size=1) == pytest.approx(5.0)
    # Unit vectors at 0, 90 and 180 degrees: 1 - cos is largest (2) for the opposite pair.
    directions = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert cluster_diameter(directions, distance="cosine") == pytest.approx(2.0)
    assert cluster_diameter(triangle[:1]) == 0.0


def test_nearest_gallery_distance_by_hand() -> None:
    gallery = np.array([[0.0, 0.0], [10.0, 0.0]])
    query = np.array([[3.0, 4.0], [10.0, 1.0]])
    np.testing.assert_allclose(nearest_gallery_distance(query, gallery), [5.0, 1.0])
    # Cosine: (3, 4) vs (10, 0) -> cos = 3/5 -> 1 - cos = 0.4; the zero vector scores cos 0.
    np.testing.assert_allclose(nearest_gallery_distance(query[:1], gallery, distance="cosine"), [0.4],
                               atol=1e-6)


def test_the_threshold_is_the_query_clusters_diameter() -> None:
    # One query cluster {0, 2} (diameter 2). Gallery item at 3.5:
    # query 0 is 3.5 away (> 2, private), query 2 is 1.5 away (<= 2, shared).
    query = np.array([[0.0], [2.0]])
    gallery = np.array([[3.5]])
    flags = detect_private_generic(query, gallery, num_clusters=1)
    np.testing.assert_array_equal(flags, [True, False])
    # Moving the gallery item to 2.0 + 2.0 = 4.0 puts query 0 at 4 (private), query 2 at
    # exactly 2 = D_c: not strictly farther, so still shared.
    np.testing.assert_array_equal(detect_private_generic(query, np.array([[4.0]]), num_clusters=1),
                                  [True, False])


def test_singleton_clusters_flag_every_query_without_an_identical_gallery_item() -> None:
    # With one cluster per query every diameter is 0: only the query that coincides with a
    # gallery item is shared.
    query = np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]])
    gallery = np.array([[5.0, 5.0], [20.0, 20.0]])
    np.testing.assert_array_equal(detect_private_generic(query, gallery, num_clusters=3),
                                  [True, False, True])


def blobs(rng: np.random.Generator, centres: np.ndarray, per_blob: int) -> np.ndarray:
    return np.concatenate([centre + rng.normal(size=(per_blob, centres.shape[1]))
                           for centre in centres]).astype(np.float32)


@pytest.mark.parametrize("num_clusters", ["elbow", 5])
def test_private_queries_far_from_the_gallery_are_flagged_euclidean(num_clusters) -> None:
    # Three shared classes near the origin, two private ones far away; the gallery holds
    # only the shared classes.
    rng = np.random.default_rng(0)
    shared = np.array([[0.0, 0.0], [12.0, 0.0], [0.0, 12.0]])
    private = np.array([[40.0, 40.0], [-40.0, 40.0]])
    query = blobs(rng, np.vstack([shared, private]), 20)
    gallery = blobs(rng, shared, 25)
    flags = detect_private_generic(query, gallery, num_clusters=num_clusters, seed=0)
    np.testing.assert_array_equal(flags, np.repeat([False, False, False, True, True], 20))


def test_private_queries_pointing_away_from_the_gallery_are_flagged_cosine() -> None:
    # Directions: shared classes around angles 0, 60, 120 degrees (varying lengths, which
    # cosine must ignore), private ones around 220 and 300 degrees.
    rng = np.random.default_rng(1)

    def around(angles_deg: list[float], per_blob: int) -> np.ndarray:
        jitter = rng.normal(scale=3, size=per_blob * len(angles_deg))
        angles = np.deg2rad(np.repeat(angles_deg, per_blob) + jitter)
        lengths = rng.uniform(0.5, 5.0, size=angles.size)
        unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return (unit * lengths[:, None]).astype(np.float32)

    query = around([0, 60, 120, 220, 300], 15)
    gallery = around([0, 60, 120], 20)
    flags = detect_private_generic(query, gallery, distance="cosine", num_clusters=5, seed=0)
    np.testing.assert_array_equal(flags, np.repeat([False, False, False, True, True], 15))


def test_the_rule_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    query, gallery = rng.normal(size=(60, 3)), rng.normal(size=(40, 3)) + 1.0
    first = detect_private_generic(query, gallery, seed=7)
    np.testing.assert_array_equal(first, detect_private_generic(query, gallery, seed=7))
    assert first.dtype == np.bool_ and first.shape == (60,)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_clusters": "auto"}, r"num_clusters='auto' is not supported; valid choices: 'elbow'"),
    ({"num_clusters": 0}, r"num_clusters must be 'elbow' or an integer between 1 and the 4"),
    ({"num_clusters": 5}, r"between 1 and the 4 queries, got 5"),
    ({"distance": "l1"}, r"distance='l1'.*'euclidean', 'cosine'"),
])
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_private_generic(np.zeros((4, 2)), np.ones((3, 2)), **kwargs)


def test_mismatched_widths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"query_features has 2 dimensions but gallery_features has 3"):
        detect_private_generic(np.zeros((4, 2)), np.ones((3, 3)), num_clusters=2)
