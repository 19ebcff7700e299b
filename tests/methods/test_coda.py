"""CoDA: K-means initialisation of its classifiers, their correspondence, and private queries."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from u2cdr.methods.coda import refine_spherical_centroids
from u2cdr.registry import METHODS, ConfigError, build

TINY = dict(type="coda", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
            num_clusters=4)


def _build(**overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY, **overrides}, "method", device="cpu")


def _started(method, pair):
    session = method.start_session(pair)
    method.initialize_session(session)
    return session


def test_spherical_refinement_by_hand() -> None:
    points = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    start = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    refined = refine_spherical_centroids(points, start, iterations=3)
    # (1, 0) and (0.8, 0.6) share centroid 0 → normalised (1.8, 0.6); the empty centroid 2 stays.
    norm = (1.8**2 + 0.6**2) ** 0.5
    assert refined.tolist() == [pytest.approx([1.8 / norm, 0.6 / norm]), pytest.approx([0.0, 1.0]),
                                pytest.approx([-1.0, 0.0])]


def test_classifiers_start_as_unit_centroids_sized_to_the_data(tiny_pair) -> None:
    method = _build(num_clusters=15)  # 15·(1, 2, 3, 4) > 40 images: capped at the smaller domain
    _started(method, tiny_pair)
    assert method.describe()["cluster_counts"] == [15, 30, 40, 40]
    for domain in ("A", "B"):
        for classifier in method.classifiers[domain]:
            assert torch.allclose(classifier.weight.norm(dim=1), torch.ones(classifier.out_features),
                                  atol=1e-5)


def test_identical_domains_get_identical_classifiers_and_no_alignment_loss(tiny_pair) -> None:
    """Pooled K-means gives both domains the same start: cluster k means the same in both."""
    same = replace(tiny_pair, gallery=tiny_pair.query)
    method = _build()
    session = _started(method, same)
    for classifier_a, classifier_b in zip(method.classifiers["A"], method.classifiers["B"]):
        assert torch.equal(classifier_a.weight, classifier_b.weight)
    x_a, idx_a, _, _ = next(same.paired_batches(8, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        terms, _, _ = method.loss_terms(session, x_a, idx_a, x_a, idx_a)
    assert terms["L_CCA_A"].item() == 0.0 and terms["L_CCA_B"].item() == 0.0
    assert terms["L_ISS_A"].item() > 0


@pytest.mark.parametrize("recluster_every", [0, 1])
def test_classifiers_are_reclustered_only_when_asked(recluster_every, tiny_pair) -> None:
    method = _build(recluster_every=recluster_every)
    session = _started(method, tiny_pair)
    x_a, idx_a, x_b, idx_b = next(tiny_pair.paired_batches(16, torch.Generator().manual_seed(0)))
    method.train_step(session, x_a, idx_a, x_b, idx_b, epoch=0, step=0)
    trained = method.classifiers["A"][0].weight.detach().clone()
    method.on_epoch_start(session, 1)
    weights = method.classifiers["A"][0].weight.detach()
    if recluster_every:
        assert not torch.equal(weights, trained)
        assert torch.allclose(weights.norm(dim=1), torch.ones(len(weights)), atol=1e-5)
        assert method.describe()["flags"]["recluster_every"] == 1
    else:
        assert torch.equal(weights, trained)
        assert "recluster_every" not in method.describe()["flags"]


def test_classifiers_learn_at_their_own_rate(tiny_pair) -> None:
    method = _build(lr=0.05, head_lr=1e-4)
    session = method.start_session(tiny_pair)
    groups = session.optimizer.param_groups
    assert [group["lr_scale"] for group in groups] == pytest.approx([1.0, 1e-4 / 0.05])
    assert groups[1]["weight_decay"] == 0.0


def test_private_queries_by_the_query_classifiers_prototypes() -> None:
    method = _build(num_clusters=2)
    prototypes = torch.nn.Linear(2, 2, bias=False)  # 2-d features keep the distances readable
    with torch.no_grad():
        prototypes.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    method.classifiers["A"][0] = prototypes
    query = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    gallery = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    # cluster 0 = {q0, q1}, diameter ‖q0 − q1‖ = 0.632; cluster 1 = {q2}, diameter 0.
    # nearest gallery distances: q0 0, q1 0.283, q2 0.632 → only q2 is private.
    assert method.detect_private(query, gallery).tolist() == [False, False, True]
    assert method.describe()["flags"] == {"private_detection": "classifier"}
    method.embedding = "backbone"
    assert method.detect_private(query, gallery) is None
    assert method.describe()["flags"] == {"private_detection": "generic"}
    assert _build(private_detection="generic").detect_private(query, gallery) is None


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="detection_head must index"):
        _build(detection_head=4)
    with pytest.raises(ConfigError, match="'cosine'.*l1, l2"):
        _build(alignment_norm="cosine")
    with pytest.raises(ConfigError, match="'kmeans'.*classifier, generic"):
        _build(private_detection="kmeans")
    with pytest.raises(ConfigError, match="recluster_every must be >= 0"):
        _build(recluster_every=-1)
    with pytest.raises(ConfigError, match="num_clusters must be an integer"):
        _build(num_clusters="oracle")
