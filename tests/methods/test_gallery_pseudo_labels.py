"""What OVANet, DANCE and UniOT share (``_gallery_pseudo_labels``): gallery K-means pseudo-labels
that stand in for source labels, their refresh, the loss bookkeeping and the adaptation record."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from u2cdr.methods._gallery_pseudo_labels import scale_gradient
from u2cdr.methods.coda import refine_spherical_centroids
from u2cdr.models.clustering import kmeans
from u2cdr.registry import METHODS, ConfigError, build

TINY = {
    "ovanet": dict(type="ovanet", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
                   num_clusters=4),
    "dance": dict(type="dance", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
                  num_clusters=4),
    "uniot": dict(type="uniot", backbone=dict(type="small_cnn", width=8), batch_size=16, lr=0.05,
                  num_clusters=4, target_prototypes=4, ccd_fill=16, ccd_start_epoch=0),
}


def _build(name: str, **overrides):
    torch.manual_seed(2024)
    return build(METHODS, {**TINY[name], **overrides}, "method", device="cpu")


def _prepared(method, pair):
    session = method.start_session(pair)
    method.initialize_session(session)
    method.on_epoch_start(session, 0)
    return session


@pytest.mark.parametrize("name", sorted(TINY))
def test_classifier_starts_at_the_gallery_kmeans_and_its_labels(name, tiny_pair) -> None:
    method = _build(name)
    session = _prepared(method, tiny_pair)
    bank = session.banks["B"].entries.numpy()
    centroids, assignments, _ = kmeans(bank, 4, seed=torch.initial_seed() % (2**31 - 1),
                                       niter=method.kmeans_iterations, spherical=True)
    assert np.allclose(method.classifier.prototypes().detach().numpy(), centroids, atol=1e-5)
    assert method.estimates.tensors["gallery"].tolist() == assignments.tolist()
    assert method.num_classes == 4


def test_refresh_keeps_class_identity_and_leaves_the_classifier_alone(tiny_pair) -> None:
    """Refreshing starts Lloyd from the classifier's prototypes: on an unchanged bank the
    labels are each entry's nearest refined prototype, and the learnt prototypes stay."""
    method = _build("dance")
    session = _prepared(method, tiny_pair)
    with torch.no_grad():   # move the prototypes so the refresh has something to do
        method.classifier.weight.add_(0.3 * torch.randn_like(method.classifier.weight))
    prototypes = method.classifier.prototypes().detach().clone()
    method.on_epoch_start(session, 1)
    bank = session.banks["B"].entries
    assert torch.equal(method.classifier.prototypes().detach(), prototypes)
    refined = refine_spherical_centroids(bank, prototypes, method.kmeans_iterations)
    assert method.estimates.tensors["gallery"].tolist() == (bank @ refined.t()).argmax(1).tolist()
    unchanged = _build("dance", recluster_every=0)
    session = _prepared(unchanged, tiny_pair)
    before = unchanged.estimates.tensors["gallery"].clone()
    unchanged.on_epoch_start(session, 1)
    assert torch.equal(unchanged.estimates.tensors["gallery"], before)


@pytest.mark.parametrize("name", sorted(TINY))
def test_one_step_lowers_the_loss_and_logs_the_weighted_sum(name, tiny_pair) -> None:
    # lr 0.01 (the papers' rate): at 0.05 one step of batch 16 overshoots OVANet's OVA heads
    method = _build(name, lr=0.01)
    session = _prepared(method, tiny_pair)
    batch = next(tiny_pair.paired_batches(16, torch.Generator().manual_seed(0)))
    features_before = method.embed(tiny_pair.query)

    def loss_on_batch() -> float:
        torch.manual_seed(7)   # UniOT's memory fills are random: the same fill both times
        with torch.no_grad():
            return method.weighted_loss(method.loss_terms(session, *batch)[0]).item()

    before = loss_on_batch()
    torch.manual_seed(7)
    logged = method.train_step(session, *batch, epoch=0, step=0)
    assert logged["loss"].item() == pytest.approx(before, rel=1e-5)
    weights = method.describe()["loss_weights"]
    terms = {key: value.item() for key, value in logged.items() if key != "loss"}
    assert set(terms) == set(weights) and "L_CLS_B" in terms
    assert logged["loss"].item() == pytest.approx(sum(weights[k] * v for k, v in terms.items()),
                                                  rel=1e-5)
    assert loss_on_batch() < before
    assert not np.allclose(features_before, method.embed(tiny_pair.query), atol=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_elbow_and_oracle_cluster_counts(name, tiny_pair) -> None:
    elbow = _build(name, num_clusters="elbow", elbow_k_max=8)
    elbow.start_session(tiny_pair)
    assert 2 <= elbow.num_classes <= 8
    assert elbow.describe()["flags"] == {}
    oracle = _build(name, num_clusters="oracle")
    uci_gallery = replace(tiny_pair, query=tiny_pair.gallery, gallery=tiny_pair.query)
    oracle.start_session(uci_gallery)
    assert oracle.num_classes == 10        # the gallery's class count, read only for the count
    info = oracle.describe()
    assert info["flags"] == {"num_clusters": "oracle"}
    assert "pseudo-labels" in info["adaptation"] and "label-free" in info["adaptation"]


def test_bad_shared_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'kmeans'.*'oracle', 'elbow'"):
        _build("ovanet", num_clusters="kmeans")
    with pytest.raises(ConfigError, match="integer >= 2"):
        _build("dance", num_clusters=1)
    with pytest.raises(ConfigError, match="recluster_every must be >= 0"):
        _build("uniot", recluster_every=-1)
    with pytest.raises(RuntimeError, match="no classifier yet"):
        _build("dance").num_classes


def test_head_gradient_scale_shrinks_only_the_encoders_share(tiny_pair) -> None:
    """Same forward values; the heads' gradient is unchanged, the encoder's is scaled."""
    features = torch.tensor([[1.0, 2.0]], requires_grad=True)
    scaled = scale_gradient(features, 0.1)
    assert torch.equal(scaled, features)
    (scaled * torch.tensor([[3.0, -1.0]])).sum().backward()
    assert features.grad[0].tolist() == pytest.approx([0.3, -0.1])

    grads = {}
    for scale in (1.0, 0.1):
        method = _build("dance", head_gradient_scale=scale)
        session = _prepared(method, tiny_pair)
        batch = next(tiny_pair.paired_batches(16, torch.Generator().manual_seed(0)))
        terms, _, _ = method.loss_terms(session, *batch)
        head_terms = sum(value for name, value in terms.items() if not name.startswith("L_INCE"))
        method.encoder.zero_grad()
        method.classifier.zero_grad()
        head_terms.backward()
        grads[scale] = (method.encoder.head.layers[-1].weight.grad.clone(),
                        method.classifier.weight.grad.clone())
    assert torch.allclose(grads[0.1][0], 0.1 * grads[1.0][0], rtol=1e-4, atol=1e-8)
    assert torch.allclose(grads[0.1][1], grads[1.0][1], rtol=1e-5, atol=1e-8)
    assert _build("dance", head_gradient_scale=0.1).describe()["flags"] == {"head_gradient_scale": 0.1}
    with pytest.raises(ConfigError, match=r"head_gradient_scale must lie in \[0, 1\]"):
        _build("ovanet", head_gradient_scale=2.0)
